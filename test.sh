#!/usr/bin/env bash
# Builds everything and runs every test. Each test process starts its own throwaway PostgreSQL
# (or uses BILLING_TEST_DB). Extra arguments go to `dotnet test` (e.g. --filter FullyQualifiedName~Usage).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/prereqs.sh
ensure_prereqs

dotnet build Billing.sln -c Release -warnaserror --nologo -v minimal
# Test projects run one after another: the 2-core machine is shared with their PostgreSQL and silos.
dotnet test Billing.sln -c Release --no-build --nologo -m:1 \
  --logger "console;verbosity=normal" "$@"

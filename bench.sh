#!/usr/bin/env bash
# Benchmark of recording AI usage: Orleans (cluster and HTTP paths) against the seed's lock-based transaction.
# Starts its own throwaway PostgreSQL (defaults: fsync and synchronous_commit on) or uses BILLING_TEST_DB,
# one silo and the gateway as child processes. Options: ./bench.sh --help (e.g. --seconds 10, --smoke).
# Results and logs: stdout, and .artifacts/bench/<run>/ (silo.log, gateway.log).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/prereqs.sh
ensure_prereqs

projects=(Silo/Silo.csproj Client/Client.csproj tests/Billing.Bench/Billing.Bench.csproj)
# --help needs only the bench program (its text is there), not the silo and gateway it would start.
for arg in "$@"; do [[ "$arg" = --help || "$arg" = -h ]] && projects=(tests/Billing.Bench/Billing.Bench.csproj); done
for project in "${projects[@]}"; do
  echo "building $project (Release)…"
  dotnet build "$project" -c Release --nologo -v quiet -clp:ErrorsOnly
done
exec dotnet tests/Billing.Bench/bin/Release/net10.0/Billing.Bench.dll --root "$PWD" "$@"

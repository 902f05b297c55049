#!/usr/bin/env bash
# Builds everything and runs every test. Each test process starts its own throwaway PostgreSQL
# (or uses BILLING_TEST_DB). Extra arguments go to `dotnet test` (e.g. --filter FullyQualifiedName~SeedDefect).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/prereqs.sh
ensure_prereqs --browser

dotnet build Billing.sln -c Release -warnaserror --nologo -v minimal

log="$(mktemp -t billing-test.XXXXXX)"
trap 'rm -f "$log"' EXIT
started=$SECONDS
# Test projects run one after another: the 2-core machine is shared with their PostgreSQL and silos.
set +e
dotnet test Billing.sln -c Release --no-build --nologo -m:1 --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The failures again at the end, where a CI log's tail shows them: each failed test with its message.
awk '
  /^ *Failed [A-Za-z_][A-Za-z0-9_.]*/ { if (!shown++) print "failed tests:"; printing = 1; lines = 0 }
  printing && /^ *(Passed|Skipped) / { printing = 0 }
  printing && /Stack Trace:/ { printing = 0 }
  printing && lines++ < 30 { print }' "$log"

# One closing line for the whole suite, summed over the test projects.
awk -v seconds=$((SECONDS - started)) '
  /^ *Passed: [0-9]+$/  { passed += $2 }
  /^ *Failed: [0-9]+$/  { failed += $2 }
  /^ *Skipped: [0-9]+$/ { skipped += $2 }
  END { printf "tests in %d s\n%d passed, %d failed, %d skipped\n", seconds, passed, failed, skipped }' "$log"
exit "$status"

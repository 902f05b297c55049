# Sourced by test.sh, run.sh and bench.sh: installs what the project needs on a fresh machine.
# `ensure_prereqs --browser` (test.sh) also wants chromium, which only the console's browser tests use.
ensure_prereqs() {
  if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "Installing PostgreSQL (Debian packages)…"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      echo "PostgreSQL (initdb, pg_ctl) is missing; install the postgresql package." >&2
      return 1
    fi
  fi
  if ! command -v pg_ctl >/dev/null 2>&1; then
    PATH="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1):$PATH"
    export PATH
  fi
  # The console's build runs `npm ci` (Client/Console); its browser tests drive Debian's chromium (Playwright's own
  # browser downloads are not used). Each is installed only when missing.
  local missing=()
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ "${1:-}" = --browser ]; then
    [ -x "${BILLING_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing ${missing[*]} (Debian packages)…"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "Missing: ${missing[*]}; install these Debian packages (npm builds the console, chromium runs its browser tests)." >&2
      return 1
    fi
  fi
  command -v dotnet >/dev/null 2>&1 || { echo "The .NET 10 SDK (dotnet) is missing." >&2; return 1; }
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
}

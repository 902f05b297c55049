#!/usr/bin/env bash
# Starts Billing on this machine: a local PostgreSQL (unless ConnectionStrings__Billing is set), the schema,
# N silo processes in one cluster (Orleans Dashboard on each) and the HTTP gateway. Ctrl-C stops all of it.
#
#   ./run.sh [--silos N] [--no-gateway] [--no-build]
#
# Runs in the Development environment (loopback addresses, readable logs). The schema is applied first by
# `dotnet Billing.Silo.dll migrate`; the silos do not apply it themselves.
#
# Environment (all optional):
#   ConnectionStrings__Billing  use this database; no local PostgreSQL is started or stopped, and then
#                               Auth__SigningKey is required (no development token is printed)
#   Auth__SigningKey            the gateway's HS256 key (at least 32 bytes); default: the development key, local PostgreSQL only
#   BILLING_DATA_DIR            where PostgreSQL's data, sockets and the logs live (default: ./.data)
#   BILLING_PG_PORT             port of the local PostgreSQL (default 5433)
#   BILLING_SILO_PORT           first silo port (default 11111; silo i uses +i)
#   BILLING_GATEWAY_PORT        first Orleans gateway port (default 30000; silo i uses +i)
#   BILLING_DASHBOARD_PORT      first dashboard port (default 8080; silo i uses +i)
#   BILLING_HTTP_PORT           the HTTP gateway's port (default 5080)
#   Orleans__ClusterId          the cluster's id (default billing)
# The silos also get Silo/silo.env (the runtime's GC settings); a variable already set here wins.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
SILOS=1
GATEWAY=1
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --silos) SILOS="${2:?--silos needs a number}"; shift 2 ;;
    --silos=*) SILOS="${1#--silos=}"; shift ;;
    --no-gateway) GATEWAY=0; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "Unknown argument: $1 (see ./run.sh --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$SILOS" =~ ^[1-9][0-9]*$ ]]; then echo "--silos must be a positive number" >&2; exit 2; fi

# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
ensure_prereqs

DATA="${BILLING_DATA_DIR:-$ROOT/.data}"
PG_PORT="${BILLING_PG_PORT:-5433}"
SILO_PORT="${BILLING_SILO_PORT:-11111}"
GATEWAY_PORT="${BILLING_GATEWAY_PORT:-30000}"
DASHBOARD_PORT="${BILLING_DASHBOARD_PORT:-8080}"
HTTP_PORT="${BILLING_HTTP_PORT:-5080}"
CONFIGURATION=Release
SILO_DIR="$ROOT/Silo/bin/$CONFIGURATION/net10.0"
CLIENT_DIR="$ROOT/Client/bin/$CONFIGURATION/net10.0"
LOGS="$DATA/logs"
PG_DATA="$DATA/postgres"
PG_SOCKETS="$DATA/postgres-run"
mkdir -p "$LOGS"
[ -f "$ROOT/Client/Client.csproj" ] || GATEWAY=0

log() { printf '[run.sh] %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
as_postgres() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---- stopping ------------------------------------------------------------------------------------------------
LOCAL_PG=0
GATEWAY_PID=""
SILO_PIDS=()
STOPPING=0

# SIGTERM, then wait up to $2 seconds, then SIGKILL.
stop_process() {
  local pid="$1" grace="$2" name="$3"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 10))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) did not stop in ${grace}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap '' INT TERM
  log "stopping…"
  if [ -n "$GATEWAY_PID" ]; then stop_process "$GATEWAY_PID" 15 gateway; fi
  # Silos leave the cluster in parallel (each marks itself Dead in the membership table).
  local pid
  for pid in "${SILO_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SILO_PIDS[@]}"; do stop_process "$pid" 30 silo; done
  if [ "$LOCAL_PG" = 1 ]; then
    (cd /tmp && as_postgres pg_ctl -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null) || log "pg_ctl stop failed (see $LOGS/postgres.log)"
  fi
  rm -f "$DATA/run.pids"
  log "stopped"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT

# A previous run killed with SIGKILL may have left processes behind: stop those first.
if [ -f "$DATA/run.pids" ]; then
  while read -r pid; do
    if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'Billing\.\(Silo\|Client\)\.dll'; then
      log "stopping process $pid left by an earlier run"
      # Waited for, not slept on: a silo still leaving the cluster holds its ports, and ours would fail to bind them.
      stop_process "$pid" 30 "process $pid left by an earlier run"
    fi
  done < "$DATA/run.pids"
  rm -f "$DATA/run.pids"
fi

# ---- build ---------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  log "building (Release)…"
  dotnet build "$ROOT/Silo/Silo.csproj" -c "$CONFIGURATION" --nologo -v quiet -clp:ErrorsOnly >"$LOGS/build.log" 2>&1 \
    || { cat "$LOGS/build.log" >&2; exit 1; }
  if [ "$GATEWAY" = 1 ]; then
    dotnet build "$ROOT/Client/Client.csproj" -c "$CONFIGURATION" --nologo -v quiet -clp:ErrorsOnly >>"$LOGS/build.log" 2>&1 \
      || { cat "$LOGS/build.log" >&2; exit 1; }
  fi
fi
[ -f "$SILO_DIR/Billing.Silo.dll" ] || { echo "$SILO_DIR/Billing.Silo.dll is missing: run without --no-build" >&2; exit 1; }
if [ "$GATEWAY" = 1 ] && [ ! -f "$CLIENT_DIR/Billing.Client.dll" ]; then
  echo "$CLIENT_DIR/Billing.Client.dll is missing: run without --no-build" >&2; exit 1
fi

# ---- PostgreSQL ----------------------------------------------------------------------------------------------
if [ -n "${ConnectionStrings__Billing:-}" ]; then
  CONNECTION_STRING="$ConnectionStrings__Billing"
  if [ "$GATEWAY" = 1 ] && [ -z "${Auth__SigningKey:-}" ]; then
    echo "ConnectionStrings__Billing names an external database: set Auth__SigningKey too (at least 32 bytes, e.g. \$(openssl rand -base64 48));" >&2
    echo "the development signing key is used only with run.sh's own local PostgreSQL." >&2
    exit 2
  fi
  log "using the database of ConnectionStrings__Billing (no local PostgreSQL)"
else
  mkdir -p "$PG_SOCKETS"
  if is_root; then
    # The postgres user must be able to enter every folder on the way to its data.
    chmod 755 "$DATA"
    chown postgres:postgres "$PG_SOCKETS"
    if ! runuser -u postgres -- test -x "$DATA"; then
      echo "PostgreSQL runs as the postgres user, which cannot enter $DATA (a folder on the way, such as /root, is closed to it)." >&2
      echo "Put the data elsewhere, e.g. BILLING_DATA_DIR=/tmp/billing-data ./run.sh" >&2
      exit 2
    fi
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in $PG_DATA (first run)"
    mkdir -p "$PG_DATA"
    if is_root; then chown postgres:postgres "$PG_DATA"; fi
    chmod 700 "$PG_DATA"
    (cd /tmp && as_postgres initdb -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8) >"$LOGS/initdb.log" 2>&1 \
      || { cat "$LOGS/initdb.log" >&2; exit 1; }
  fi
  touch "$LOGS/postgres.log"
  if is_root; then chown postgres:postgres "$LOGS/postgres.log"; fi
  if (cd /tmp && as_postgres pg_ctl -D "$PG_DATA" status >/dev/null 2>&1); then
    log "PostgreSQL is already running on $PG_DATA: using it (it is stopped on exit)"
    LOCAL_PG=1
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    # setsid: its own session, so a Ctrl-C on the terminal reaches it only through the cleanup above,
    # after the silos have left the cluster.
    (cd /tmp && as_postgres setsid -w pg_ctl -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_SOCKETS -c max_connections=300" start >/dev/null) \
      || { tail -n 20 "$LOGS/postgres.log" >&2; exit 1; }
    LOCAL_PG=1
  fi
  if [ "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'billing'")" != 1 ]; then
    log "creating database billing"
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE billing" >/dev/null
  fi
  CONNECTION_STRING="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=billing"
fi
export ConnectionStrings__Billing="$CONNECTION_STRING"
export DOTNET_ENVIRONMENT="${DOTNET_ENVIRONMENT:-Development}" ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"

# ---- schema --------------------------------------------------------------------------------------------------
log "applying the schema (dotnet Billing.Silo.dll migrate)"
(cd "$SILO_DIR" && dotnet Billing.Silo.dll migrate >"$LOGS/migrate.log" 2>&1 </dev/null) \
  || { echo "the schema could not be applied; the end of $LOGS/migrate.log:" >&2; tail -n 20 "$LOGS/migrate.log" >&2; exit 1; }

# ---- silos and gateway ---------------------------------------------------------------------------------------
# Exports the silo's runtime settings (silo.env beside Billing.Silo.dll), except those already set.
silo_env() {
  local name value
  while IFS='=' read -r name value; do
    case "$name" in '' | \#*) continue ;; esac
    [ -n "${!name+x}" ] || export "$name=$value"
  done <"$SILO_DIR/silo.env"
}

wait_ready() { # url pid name seconds
  local url="$1" pid="$2" name="$3" seconds="$4"
  for _ in $(seq 1 $((seconds * 2))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited while starting; the end of its log:" >&2
      tail -n 30 "$LOGS/$name.log" >&2
      return 1
    fi
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "$name is not ready after ${seconds}s ($url); see $LOGS/$name.log" >&2
  return 1
}

for i in $(seq 0 $((SILOS - 1))); do
  log "starting silo-$i (silo port $((SILO_PORT + i)), gateway port $((GATEWAY_PORT + i)), dashboard port $((DASHBOARD_PORT + i)))"
  (cd "$SILO_DIR" && silo_env && exec dotnet Billing.Silo.dll \
      --Orleans:SiloPort=$((SILO_PORT + i)) --Orleans:GatewayPort=$((GATEWAY_PORT + i)) \
      --Silo:DashboardPort=$((DASHBOARD_PORT + i)) --Orleans:Name="silo-$i" --Billing:ApplySchema=false \
      >"$LOGS/silo-$i.log" 2>&1 </dev/null) &
  SILO_PIDS+=("$!")
  echo "$!" >>"$DATA/run.pids"
  # The first silo creates the cluster; the others then join it together.
  if [ "$i" = 0 ]; then wait_ready "http://127.0.0.1:$DASHBOARD_PORT/health/ready" "$!" silo-0 120; fi
done
for i in $(seq 1 $((SILOS - 1))); do
  wait_ready "http://127.0.0.1:$((DASHBOARD_PORT + i))/health/ready" "${SILO_PIDS[$i]}" "silo-$i" 120
done

if [ "$GATEWAY" = 1 ]; then
  log "starting the gateway on http://127.0.0.1:$HTTP_PORT"
  (cd "$CLIENT_DIR" && exec dotnet Billing.Client.dll --urls "http://127.0.0.1:$HTTP_PORT" \
      >"$LOGS/gateway.log" 2>&1 </dev/null) &
  GATEWAY_PID=$!
  echo "$GATEWAY_PID" >>"$DATA/run.pids"
  wait_ready "http://127.0.0.1:$HTTP_PORT/health/ready" "$GATEWAY_PID" gateway 120
fi

# ---- what is running -----------------------------------------------------------------------------------------
echo
echo "Billing is running ($SILOS silo(s); logs in $LOGS)"
if [ "$LOCAL_PG" = 1 ]; then echo "  PostgreSQL      $CONNECTION_STRING"; fi
for i in $(seq 0 $((SILOS - 1))); do
  echo "  silo-$i          dashboard http://127.0.0.1:$((DASHBOARD_PORT + i))/   health http://127.0.0.1:$((DASHBOARD_PORT + i))/health/ready   gateway port $((GATEWAY_PORT + i))"
done
if [ "$GATEWAY" = 1 ]; then
  echo "  HTTP API        http://127.0.0.1:$HTTP_PORT   (health /health/ready, OpenAPI /openapi/v1.json)"
  if [ "$LOCAL_PG" = 1 ]; then
    echo "  console         http://127.0.0.1:$HTTP_PORT/console/   (sign in with a token below)"
  else
    echo "  console         http://127.0.0.1:$HTTP_PORT/console/   (sign in with a token minted with your Auth__SigningKey:"
    echo "                  dotnet Client/bin/Release/net10.0/Billing.Client.dll token --role admin --sub <uuid>)"
  fi
fi
# A development token only for run.sh's own throwaway database: with an external one the operator mints tokens
# with their own key (dotnet Billing.Client.dll token --role admin --sub <uuid>, with Auth__SigningKey set).
if [ "$GATEWAY" = 1 ] && [ "$LOCAL_PG" = 1 ]; then
  ADMIN_ID="00000000-0000-4000-8000-000000000001"
  TOKEN="$(cd "$CLIENT_DIR" && dotnet Billing.Client.dll token --role admin --sub "$ADMIN_ID" --minutes 1440 2>/dev/null || true)"
  echo
  echo "Development admin token (24 h):"
  echo "  export TOKEN=$TOKEN"
  echo "Try:"
  echo "  curl -s -X POST -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$HTTP_PORT/v1/users/$ADMIN_ID/billing"
  echo "  curl -s -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$HTTP_PORT/v1/users/$ADMIN_ID/billing"
fi
echo
echo "Ctrl-C stops everything."

# ---- watch ---------------------------------------------------------------------------------------------------
declare -A REPORTED=()
while true; do
  sleep 1 &
  wait $! || true
  for i in "${!SILO_PIDS[@]}"; do
    pid="${SILO_PIDS[$i]}"
    if [ -z "${REPORTED[$pid]:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
      REPORTED[$pid]=1
      log "silo-$i (pid $pid) exited; the cluster goes on without it (see $LOGS/silo-$i.log)"
    fi
  done
  if [ -n "$GATEWAY_PID" ] && [ -z "${REPORTED[$GATEWAY_PID]:-}" ] && ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    REPORTED[$GATEWAY_PID]=1
    log "the gateway (pid $GATEWAY_PID) exited (see $LOGS/gateway.log)"
  fi
done

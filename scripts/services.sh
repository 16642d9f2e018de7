#!/usr/bin/env bash
# Makes sure the services the tests use are running, starting them when they are not:
#   PostgreSQL on 127.0.0.1:5432 with trust auth for local TCP and a database `test`,
#   Redis on 127.0.0.1:6379 (no persistence).
# Works without systemd (containers, CI). Run as root after scripts/install-deps.sh.
set -euo pipefail

fail() {
  echo "services: $*" >&2
  exit 1
}

wait_for() { # description, command...
  local what="$1"
  shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  fail "$what did not come up"
}

# --- PostgreSQL ----------------------------------------------------------------------------
command -v pg_ctlcluster >/dev/null 2>&1 || fail "PostgreSQL is not installed (scripts/install-deps.sh)"
pg_version="$(ls /etc/postgresql | sort -V | tail -n 1)"
[[ -n "$pg_version" ]] || fail "no PostgreSQL cluster in /etc/postgresql"
pg_conf_dir="/etc/postgresql/$pg_version/main"
hba="$pg_conf_dir/pg_hba.conf"

# Trust loopback TCP connections (a fresh install asks for a password there).
hba_changed=0
if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  cp "$hba" "$hba.greenroom-orig" 2>/dev/null || true
  sed -E -i \
    -e 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)(md5|scram-sha-256|password|ident)/\1trust/' \
    "$hba"
  grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" ||
    printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >>"$hba"
  hba_changed=1
fi

pg_running() { pg_lsclusters --no-header | awk -v v="$pg_version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; }
if pg_running; then
  if ((hba_changed)); then
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload
  fi
else
  echo "services: starting PostgreSQL $pg_version"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
fi
wait_for "PostgreSQL on 127.0.0.1:5432" pg_isready -h 127.0.0.1 -p 5432 -q

psql_admin=(psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -tAq)
"${psql_admin[@]}" -c 'SELECT 1' >/dev/null ||
  fail "cannot connect to PostgreSQL as postgres over TCP (check $hba)"
if [[ "$("${psql_admin[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]]; then
  echo "services: creating database test"
  "${psql_admin[@]}" -c 'CREATE DATABASE test'
fi

# --- Redis ---------------------------------------------------------------------------------
command -v redis-server >/dev/null 2>&1 || fail "Redis is not installed (scripts/install-deps.sh)"
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
wait_for "Redis on 127.0.0.1:6379" sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'

echo "services: PostgreSQL postgres://postgres@127.0.0.1:5432/test, Redis redis://127.0.0.1:6379"

#!/usr/bin/env bash
# Make the services the test suite and benchmarks need present and running on this machine:
# PostgreSQL 15 with PostGIS, Redis, Mosquitto, and Debian's Chromium for the browser tests.
# Installs missing Debian packages (as root), starts what is down, creates the test database.
set -euo pipefail

DB_NAME="${SCHILDWACHT_TEST_DB_NAME:-schildwacht_test}"
PG_HOST=127.0.0.1
PG_USER=postgres

need=()
dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto mosquitto-clients)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The deploy tests check the systemd units with `systemd-analyze verify`.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq
  timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null
fi

wait_for() {  # wait_for NAME COMMAND...: up to 30 s
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "$name did not come up" >&2; return 1
}

if ! pg_isready -h "$PG_HOST" -q; then
  # Running but not taking connections yet (starting, recovering): wait; down: start it.
  if ! pg_lsclusters -h 15 main 2>/dev/null | grep -q online; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect 15 main start  # the version PostGIS is installed for
  fi
  wait_for PostgreSQL pg_isready -h "$PG_HOST" -q
fi
# The suite connects as postgres over TCP on loopback without a password. A Debian cluster as
# installed asks for one there (scram-sha-256): let postgres in from loopback on this (test)
# machine, through the socket, where Debian lets the postgres user in (peer).
if ! PGCONNECT_TIMEOUT=5 psql -w -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtc 'select 1' \
    >/dev/null 2>&1; then
  echo "letting $PG_USER in over TCP on loopback (pg_hba.conf)"
  hba=$(runuser -u postgres -- psql -qAtc 'show hba_file')
  rule="host all $PG_USER 127.0.0.1/32 trust"
  grep -qxF "$rule" "$hba" || sed -i "1i $rule" "$hba"
  runuser -u postgres -- psql -qAtc 'select pg_reload_conf()' >/dev/null
  wait_for "PostgreSQL over TCP" psql -w -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtc 'select 1'
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "starting Mosquitto"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then
    mkdir -p /run/mosquitto /var/lib/mosquitto /var/log/mosquitto
    chown mosquitto: /run/mosquitto /var/lib/mosquitto /var/log/mosquitto 2>/dev/null || true
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else
    mosquitto -d -p 1883
  fi
  wait_for Mosquitto bash -c '(exec 3<>/dev/tcp/127.0.0.1/1883)'
fi

psql_admin() { psql -h "$PG_HOST" -U "$PG_USER" -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ -z "$(psql_admin -d postgres -c "select 1 from pg_database where datname = '$DB_NAME'")" ]; then
  psql_admin -d postgres -c "create database $DB_NAME"
fi
psql_admin -d "$DB_NAME" -c "create extension if not exists postgis"
# The WAL segments the server keeps to reuse (deploy/postgresql/schildwacht.conf): with fewer,
# a commit now and then waits while the server creates one. Reloadable, no restart.
if [ "$(psql_admin -d postgres -c "select setting::int < 1024 from pg_settings
                                    where name = 'min_wal_size'")" = "t" ]; then
  psql_admin -d postgres -c "alter system set min_wal_size = '1GB'" -c "select pg_reload_conf()" \
    >/dev/null
  echo "PostgreSQL min_wal_size set to 1GB"
fi
echo "services ready: PostgreSQL+PostGIS ($DB_NAME), Redis, Mosquitto"

#!/usr/bin/env bash
# Run the whole test suite against the real services (see scripts/services.sh).
# pytest's exit code 5 (nothing collected) is a failure of ours, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
export SCHILDWACHT_TEST_DATABASE_URL="${SCHILDWACHT_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/${SCHILDWACHT_TEST_DB_NAME:-schildwacht_test}}"
export SCHILDWACHT_TEST_REDIS_URL="${SCHILDWACHT_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
export SCHILDWACHT_TEST_MQTT_PORT="${SCHILDWACHT_TEST_MQTT_PORT:-1883}"
# A crash in native code (or at interpreter exit) prints every thread's stack.
export PYTHONFAULTHANDLER=1
mkdir -p test-artifacts
# Two worker processes (pytest-xdist), each on a database and a Redis database of its own, a
# test file's tests on one worker: most of a test's time is waiting for services and threads, so
# two of them share two cores well. SCHILDWACHT_TEST_WORKERS=0 runs everything in one process.
workers="${SCHILDWACHT_TEST_WORKERS:-2}"
"${VENV:-.venv}/bin/python" -m pytest -n "$workers" --dist loadfile "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$rc"

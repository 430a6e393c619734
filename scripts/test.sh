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
"${VENV:-.venv}/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$rc"

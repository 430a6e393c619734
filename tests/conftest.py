"""Shared test configuration: where the real services are (set by scripts/test.sh)."""

from __future__ import annotations

import os

# SCHILDWACHT_TEST_DB_NAME picks another database on the same server (as scripts/test.sh does;
# `SCHILDWACHT_TEST_DB_NAME=... bash scripts/services.sh` creates it), so that a run by hand does
# not drop tables under another run.
PG_URL = os.environ.get(
    "SCHILDWACHT_TEST_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/"
    + os.environ.get("SCHILDWACHT_TEST_DB_NAME", "schildwacht_test"),
)
REDIS_URL = os.environ.get("SCHILDWACHT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MQTT_PORT = int(os.environ.get("SCHILDWACHT_TEST_MQTT_PORT", "1883"))

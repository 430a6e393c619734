"""The backend's integration stack (`tests/backend/conftest.py`), for running scenarios against
it: `stack` (PostgreSQL + PostGIS, Redis and Mosquitto, or the embedded defaults) and the
session fixtures it needs."""

from tests.backend.conftest import embedded_broker, pg_url, stack  # noqa: F401

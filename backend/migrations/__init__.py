"""Alembic migrations. Run with `schildwacht migrate` (or `alembic -c backend/migrations/alembic.ini`)."""

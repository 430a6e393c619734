"""The HTTP API (FastAPI): app factory, dependencies and the one place errors become HTTP."""

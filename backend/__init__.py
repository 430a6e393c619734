"""Schildwacht backend: all I/O (MQTT, database, Redis, HTTP) lives here."""

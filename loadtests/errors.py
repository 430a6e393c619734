"""Errors of the load tests and the benchmark."""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error raised by the benchmark or the load tests."""


class ServiceUnavailable(BenchError):
    """A service (broker, database, Redis, worker, API) did not come up in time."""


class BrokerStartFailed(ServiceUnavailable):
    """The benchmark's own Mosquitto did not start."""

"""Prometheus metrics of Schildwacht, in one place. Labels carry codes, never ids or values.

Each process counts its own: the API serves its process's at /metrics, and a process that
serves no API (an ingest worker, the loops) serves its own on the port of `MetricsSettings`
(`serve`)."""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from backend.settings import MetricsSettings

log = logging.getLogger(__name__)


def serve(settings: MetricsSettings) -> WSGIServer | None:
    """Serve this process's metrics over HTTP (a daemon thread) when a port is set. A port
    that cannot be had is logged, not raised: a worker goes on without its metrics."""
    if settings.port is None:
        return None
    try:
        server, _thread = start_http_server(settings.port, addr=settings.host)
    except OSError as exc:
        log.error("metrics not served on %s:%d (%s): the process goes on without them",
                  settings.host, settings.port, exc.strerror)
        return None
    log.info("metrics served on %s:%d", settings.host, settings.port)
    return server


MESSAGES = Counter(
    "schildwacht_ingest_messages_total", "Uplink messages handled", ["channel", "outcome"]
)
REJECTED = Counter("schildwacht_ingest_rejected_total", "Uplink messages rejected", ["reason"])
ALERTS_RAISED = Counter("schildwacht_alerts_raised_total", "Alerts raised", ["type"])
COMMIT_SECONDS = Histogram(
    "schildwacht_ingest_commit_seconds", "Time to commit one ingest batch", ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5),
)
GEOFENCE_ERRORS = Counter(
    "schildwacht_geofence_errors_total",
    "Geofence defects: a fix's evaluation (the fix is stored all the same) or a batch's "
    "take-over of the stored zone states (the engine goes on with what it knows)",
)
PING_UPKEEP_FAILURES = Counter(
    "schildwacht_ping_upkeep_failures_total",
    "Steps of the pings' partition upkeep and retention that failed (retried at the next pass)",
)
FOLLOW_UPS_SWEPT = Counter(
    "schildwacht_follow_ups_swept_total",
    "Follow-ups of raised alerts (timeline, case log, device commands) that had not run within "
    "the grace time and were finished by the follow-up sweep: each one a process that died or "
    "gave up between an alert's raise and its follow-up",
)
STORE_FAILURES = Counter(
    "schildwacht_ingest_store_failures_total", "Failed ingest commits (retried)", ["kind"]
)
BROKER_CONNECTED = Gauge(
    "schildwacht_broker_connected",
    "1 while this process's MQTT client is connected to the broker, 0 while it tries again (an "
    "ingest worker at 0 takes in no alarm: they wait at the broker)",
    ["service"],
)
BROKER_CONNECTIONS_LOST = Counter(
    "schildwacht_broker_connections_lost_total",
    "Connections to the broker lost (not those this process ended)", ["service"],
)
CONSOLE_EVENTS_LIVE = Gauge(
    "schildwacht_console_events_live",
    "1 while console events from other processes reach this API process's streams (Redis "
    "pub/sub answers), 0 while they may not (its consoles read their queues more often)",
)

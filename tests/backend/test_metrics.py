"""A process without an API serves its own metrics on the port it is given; a port it cannot
have costs it its metrics, not its life."""

from __future__ import annotations

import urllib.request

from backend import metrics
from backend.mqtt.embedded import free_port
from backend.settings import MetricsSettings


def test_without_a_port_nothing_is_served() -> None:
    assert metrics.serve(MetricsSettings()) is None


def test_the_process_metrics_are_served_and_a_taken_port_is_logged(caplog) -> None:
    settings = MetricsSettings(port=free_port())
    server = metrics.serve(settings)
    assert server is not None
    try:
        metrics.GEOFENCE_ERRORS.inc(0)
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/metrics",
                                    timeout=5) as r:
            body = r.read().decode()
        assert "schildwacht_geofence_errors_total" in body

        assert metrics.serve(settings) is None  # taken: by the first
        assert "metrics not served" in caplog.text
    finally:
        server.shutdown()
        server.server_close()

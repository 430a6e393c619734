"""Fixtures of the geofence tests."""

from __future__ import annotations

import pytest

from tests.geofences.places import T0, latlon


@pytest.fixture
def fix():
    """Feed a fix at (dx, dy) metres: fix(engine, device, t, dx, dy, acc)."""

    def feed(engine, device, t, dx, dy=0.0, acc=5.0):
        lat, lon = latlon(dx, dy)
        return engine.on_fix(device, T0 + t, lat, lon, acc, now=T0 + t)

    return feed

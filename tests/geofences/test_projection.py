"""The projection the engine measures in: metres east and north in RD New, and back."""

from __future__ import annotations

import pytest

from geofences.projection import projection_for


def test_an_offset_is_that_many_metres_east_and_north():
    projection = projection_for("EPSG:28992")
    lat, lon = 51.9244, 4.4690
    moved = projection.offset(lat, lon, 300.0, -400.0)
    x0, y0 = projection.forward(lon, lat)
    x1, y1 = projection.forward(moved[1], moved[0])
    assert abs((x1 - x0) - 300.0) < 1e-3 and abs((y1 - y0) + 400.0) < 1e-3  # a millimetre
    assert projection.inverse(x0, y0) == pytest.approx((lon, lat))

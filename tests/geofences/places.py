"""Places for the geofence tests, given in RD metres around Rotterdam and converted to lon/lat."""

from __future__ import annotations

import pyproj

# Rotterdam Centraal area, in RD New (EPSG:28992) metres.
X0, Y0 = 92_600.0, 437_900.0
T0 = 1_767_261_600.0  # 2026-01-01 11:00 Europe/Amsterdam (a Thursday)

_inverse = pyproj.Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)


def lonlat(dx: float, dy: float = 0.0) -> tuple[float, float]:
    """(lon, lat) of the point dx, dy metres from the reference point."""
    return _inverse.transform(X0 + dx, Y0 + dy)


def latlon(dx: float, dy: float = 0.0) -> tuple[float, float]:
    lon, lat = lonlat(dx, dy)
    return lat, lon


def square(dx: float, dy: float, half: float) -> list[tuple[float, float]]:
    """Ring (lon, lat) of an axis-parallel square in RD around (dx, dy)."""
    return [
        lonlat(dx - half, dy - half),
        lonlat(dx + half, dy - half),
        lonlat(dx + half, dy + half),
        lonlat(dx - half, dy + half),
        lonlat(dx - half, dy - half),
    ]

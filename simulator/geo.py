"""Coordinates: WGS84 degrees (the protocol) and RD New metres (EPSG:28992, for movement).

Movement and distances are computed in RD New, the Dutch national grid, where one unit is one
metre. Only the edges convert: positions to WGS84 when a fix is written, geometries to RD New
when a region or zone is loaded.
"""

from __future__ import annotations

import functools
import math

import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

WGS84 = "EPSG:4326"
RD_NEW = "EPSG:28992"


@functools.cache
def _to_metric() -> Transformer:
    return Transformer.from_crs(WGS84, RD_NEW, always_xy=True)


@functools.cache
def _to_wgs84() -> Transformer:
    return Transformer.from_crs(RD_NEW, WGS84, always_xy=True)


def to_metric(lat: float, lon: float) -> tuple[float, float]:
    """WGS84 (lat, lon) -> RD New (x, y) in metres."""
    x, y = _to_metric().transform(lon, lat)
    return float(x), float(y)


def to_wgs84(x: float, y: float) -> tuple[float, float]:
    """RD New (x, y) in metres -> WGS84 (lat, lon)."""
    lon, lat = _to_wgs84().transform(x, y)
    return float(lat), float(lon)


def geometry_to_metric(geometry: BaseGeometry) -> BaseGeometry:
    """A shapely geometry in WGS84 lon/lat -> the same geometry in RD New metres."""
    return shapely.transform(geometry, _to_metric().transform, interleaved=False)


def geometry_to_wgs84(geometry: BaseGeometry) -> BaseGeometry:
    """A shapely geometry in RD New metres -> the same geometry in WGS84 lon/lat."""
    return shapely.transform(geometry, _to_wgs84().transform, interleaved=False)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance in metres between two WGS84 (lat, lon) points, measured in RD New."""
    ax, ay = to_metric(*a)
    bx, by = to_metric(*b)
    return math.hypot(ax - bx, ay - by)

"""The reasons shapely and GEOS give for a geometry they refuse, without its positions."""

from __future__ import annotations

import pytest
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from geofences.errors import without_positions


@pytest.mark.parametrize(("reason", "kept"), [
    ("Self-intersection[4.405 51.905]", "Self-intersection"),
    ("Too few points in geometry component[4.4 51.9]", "Too few points in geometry component"),
    ("Ring Self-intersection[1e-05 5.2E+1]", "Ring Self-intersection"),
    ("Interior is disconnected[4 52]", "Interior is disconnected"),
    ("Hole lies outside shell at POINT (4.4 51.9)", "Hole lies outside shell at"),
    ("point 4.25, -51.5 is out of range", "point , is out of range"),
    ("A linearring requires at least 4 coordinates.",
     "A linearring requires at least 4 coordinates."),
    ("lies outside the area of EPSG:28992 (lon, lat)", "lies outside the area of EPSG:28992 "
     "(lon, lat)"),
])
def test_positions_are_taken_out_and_the_reason_kept(reason, kept):
    assert without_positions(reason) == kept


def test_a_bow_tie_is_named_without_where_it_crosses():
    bow_tie = Polygon([(4.40, 51.90), (4.41, 51.91), (4.41, 51.90), (4.40, 51.91)])
    reason = explain_validity(bow_tie)
    assert "[" in reason  # shapely names the crossing
    assert without_positions(reason) == "Self-intersection"

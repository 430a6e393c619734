"""Errors of the region package.

- `RegionError`: base of every error raised here.
  - `RegionDataError`: a packaged data file is missing, malformed or inconsistent with the others.
  - `UnknownRegionCode`: a look-up by code (police unit, Veilig Thuis desk, municipality) found
    nothing.
  - `InvalidCoordinate`: a latitude/longitude is not a finite WGS84 value in range.
"""


class RegionError(Exception):
    """Base of every error of the region package."""

    code = "region_error"


class RegionDataError(RegionError):
    """A packaged data file is missing, malformed or inconsistent with the other files."""

    code = "region_data_error"


class UnknownRegionCode(RegionError, LookupError):
    """No police unit, Veilig Thuis desk or municipality has the requested code."""

    code = "unknown_region_code"


class InvalidCoordinate(RegionError, ValueError):
    """A coordinate is not finite or lies outside the WGS84 range."""

    code = "invalid_coordinate"

"""The in-memory index of active measures, in metric coordinates.

`MeasureIndex` compiles measures once (projection, prepared geometries, eroded copies for the
segment test, bounding boxes) and offers:

- per-device lookup: `by_subject[device]` (measures whose offender device it is) and
  `by_protected[device]` (contact bans protecting it), so a fix only meets its own measures;
- a shapely 2 STRtree over the prepared projected zones for spatial questions that are not
  about one device (`query`: which zones contain or come near a point).

An index is immutable once built; the engine swaps whole indexes to reload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

import shapely
from shapely import STRtree
from shapely.geometry import LineString, MultiPolygon, Point
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geofences.config import GeofenceConfig
from geofences.errors import InvalidGeometry, InvalidMeasure, Problem, without_positions
from geofences.measures import ContactBan, ExclusionZone, Measure, ProtectedPlace
from geofences.projection import Projection, projection_for

CIRCLE_QUAD_SEGS = 16  # polygon approximation of circles, for the tree only


class CompiledMeasure:
    """A measure ready for evaluation in metric coordinates (internal to the engine)."""

    __slots__ = (
        "boundary",
        "case_id",
        "circle",
        "contact",
        "crossing_depth",
        "cx",
        "cy",
        "eroded",
        "exemptions",
        "geom",
        "id",
        "maxx",
        "maxy",
        "measure",
        "minx",
        "miny",
        "protected",
        "radius",
        "ring",
        "subjects",
        "valid_from",
        "valid_until",
        "windows",
    )  # fmt: skip

    def __init__(
        self, measure: Measure, projection: Projection, cfg: GeofenceConfig
    ) -> None:
        self.measure = measure
        self.id = measure.id
        self.case_id = measure.case_id
        self.subjects = measure.subject_device_ids
        self.contact = isinstance(measure, ContactBan)
        self.protected = (
            measure.protected_device_ids if isinstance(measure, ContactBan) else ()
        )
        self.ring = float(measure.pre_alert_m)
        self.valid_from = measure.valid_from
        self.valid_until = measure.valid_until
        self.windows = measure.time_windows
        self.exemptions = tuple(
            (
                _prepared(
                    _projected_area(e.geometry, projection, f"exceptions[{i}].geometry")
                ),
                e.valid_from,
                e.valid_until,
            )
            for i, e in enumerate(measure.exceptions)
        )
        self.cx = self.cy = self.radius = 0.0
        self.circle = False
        self.geom = self.boundary = self.eroded = None
        self.minx = self.miny = self.maxx = self.maxy = 0.0
        self.crossing_depth = cfg.crossing_min_depth_m
        if self.contact:
            self.radius = float(measure.radius_m)
            return
        if isinstance(measure, ProtectedPlace) or (
            isinstance(measure, ExclusionZone) and measure.area is None
        ):
            self.circle = True
            self.radius = float(measure.radius_m)
            self.cx, self.cy = projection.forward(*measure.centre)
            # circumscribed polygon: the tree may over-select, placement() then answers exactly
            outer = self.radius / math.cos(math.pi / (4 * CIRCLE_QUAD_SEGS))
            self.geom = _prepared(
                Point(self.cx, self.cy).buffer(outer, quad_segs=CIRCLE_QUAD_SEGS)
            )
            self.crossing_depth = min(cfg.crossing_min_depth_m, self.radius / 2)
            self.minx, self.miny = self.cx - self.radius, self.cy - self.radius
            self.maxx, self.maxy = self.cx + self.radius, self.cy + self.radius
            return
        geom = _projected_area(measure.area, projection, "geometry")
        self.geom = _prepared(geom)
        self.boundary = geom.boundary
        self.eroded = _prepared(_eroded(geom, cfg.crossing_min_depth_m))
        self.minx, self.miny, self.maxx, self.maxy = geom.bounds

    # -- evaluation -------------------------------------------------------------------------

    def active_at(self, tst: float, tz: ZoneInfo) -> bool:
        """Validity period and weekly time windows (local time in `tz`)."""
        if (self.valid_from is not None and tst < self.valid_from) or (
            self.valid_until is not None and tst >= self.valid_until
        ):
            return False
        if not self.windows:
            return True
        local = datetime.fromtimestamp(tst, tz)
        minute = local.hour * 60 + local.minute + local.second / 60.0
        weekday = local.weekday()
        return any(w.contains(weekday, minute) for w in self.windows)

    def placement(self, x: float, y: float) -> tuple[bool, float, float]:
        """(inside, depth inside, distance outside) of a projected point, in metres."""
        if self.circle:
            d = math.hypot(x - self.cx, y - self.cy) - self.radius
            return (True, -d, 0.0) if d < 0 else (False, 0.0, d)
        inside = shapely.contains_xy(self.geom, x, y)
        d = self.boundary.distance(Point(x, y))
        return (True, d, 0.0) if inside else (False, 0.0, d)

    def exempt_at(self, x: float, y: float, tst: float) -> bool:
        for geom, vf, vu in self.exemptions:
            if (
                (vf is None or tst >= vf)
                and (vu is None or tst < vu)
                and shapely.contains_xy(geom, x, y)
            ):
                return True
        return False

    def crossed(self, px: float, py: float, x: float, y: float, tst: float) -> bool:
        """Whether the straight segment (px, py) -> (x, y) passes `crossing_depth` deep into the
        zone outside every active exception. The caller checks that both ends are outside."""
        if self.circle and not self.exemptions:
            return (
                _segment_point_distance(px, py, x, y, self.cx, self.cy)
                <= self.radius - self.crossing_depth
            )
        line: BaseGeometry = LineString([(px, py), (x, y)])
        active = [
            g
            for g, vf, vu in self.exemptions
            if (vf is None or tst >= vf) and (vu is None or tst < vu)
        ]
        if active:
            line = line.difference(shapely.union_all(active))
            if line.is_empty:
                return False
        if self.circle:
            return shapely.dwithin(
                line, Point(self.cx, self.cy), self.radius - self.crossing_depth
            )
        return self.eroded.intersects(line)


def _segment_point_distance(
    ax: float, ay: float, bx: float, by: float, px: float, py: float
) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = (
        0.0
        if length2 == 0
        else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    )
    return math.hypot(ax + t * dx - px, ay + t * dy - py)


def _eroded(geom: BaseGeometry, depth: float) -> BaseGeometry:
    """The zone shrunk by `depth`, for the segment test; each part of a MultiPolygon on its
    own, as a single polygon: a part too thin to shrink (a street 20 m wide) is kept whole,
    not dropped, so a segment across it still counts."""
    parts = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    shrunk = []
    for part in parts:
        eroded = part.buffer(-depth)
        shrunk.append(part if eroded.is_empty else eroded)
    return shrunk[0] if len(shrunk) == 1 else shapely.union_all(shrunk)


def _prepared(geom: BaseGeometry) -> BaseGeometry:
    shapely.prepare(geom)
    return geom


def _projected_area(
    geom: BaseGeometry, projection: Projection, path: str
) -> BaseGeometry:
    projected = projection.geometry(geom)
    if projected.is_empty or not projected.is_valid:
        reason = (
            without_positions(explain_validity(projected)) if not projected.is_empty
            else "empty geometry"
        )
        raise InvalidGeometry(
            [Problem("invalid_geometry", path, f"geometry is not valid: {reason}")]
        )
    return projected


class MeasureIndex:
    """All active measures, compiled, with per-device lookup and an STRtree of the zones."""

    def __init__(
        self,
        measures: Iterable[Measure],
        config: GeofenceConfig | None = None,
        projection: Projection | None = None,
        *,
        skip_invalid: bool = False,
        reuse: Mapping[str, CompiledMeasure] | None = None,
    ) -> None:
        """Raises InvalidMeasure, with every problem, when a measure cannot be compiled; with
        `skip_invalid` such measures are left out instead, their problems in `skipped`.

        `reuse`: measures compiled before with the same config and projection, by id; one
        whose measure equals the new one is taken as it is (compiling is nearly all of the
        cost of an index: about 50 us a measure, against under 1 us for the tree)."""
        cfg = config or GeofenceConfig()
        proj = projection or projection_for(cfg.crs)
        reuse = reuse or {}
        compiled: dict[str, CompiledMeasure] = {}
        problems: list[Problem] = []
        for m in measures:
            if m.id in compiled:
                problems.append(
                    Problem("invalid_field", "id", f"duplicate measure id {m.id!r}")
                )
                continue
            before = reuse.get(m.id)
            if before is not None and (before.measure is m or before.measure == m):
                compiled[m.id] = before
                continue
            try:
                compiled[m.id] = CompiledMeasure(m, proj, cfg)
            except InvalidMeasure as exc:
                problems.extend(
                    Problem(p.code, f"{m.id}: {p.path}", p.message)
                    for p in exc.problems
                )
        if problems and not skip_invalid:
            raise InvalidMeasure.from_problems(problems)
        self.skipped = problems
        by_subject: dict[str, list[CompiledMeasure]] = {}
        by_protected: dict[str, list[CompiledMeasure]] = {}
        for cm in compiled.values():
            for d in cm.subjects:
                by_subject.setdefault(d, []).append(cm)
            for d in cm.protected:
                by_protected.setdefault(d, []).append(cm)
        self.measures = compiled
        self.by_subject: dict[str, tuple[CompiledMeasure, ...]] = {
            k: tuple(v) for k, v in by_subject.items()
        }
        self.by_protected: dict[str, tuple[CompiledMeasure, ...]] = {
            k: tuple(v) for k, v in by_protected.items()
        }
        # Devices on either side of a contact ban (the engine keeps their recent fixes).
        self.contact_parties: frozenset[str] = frozenset(
            d for cm in compiled.values() if cm.contact for d in (*cm.subjects, *cm.protected)
        )
        self.zones: tuple[CompiledMeasure, ...] = tuple(
            cm for cm in compiled.values() if not cm.contact
        )
        self.tree = STRtree([cm.geom for cm in self.zones])
        self.projection = proj

    def __len__(self) -> int:
        return len(self.measures)

    def query(self, x: float, y: float, within_m: float = 0.0) -> list[str]:
        """Ids of the zones (not contact bans) containing the projected point, or within
        `within_m` metres of it. Circles are answered exactly, not by their polygon."""
        point = Point(x, y)
        if within_m > 0:
            hits = self.tree.query(point, predicate="dwithin", distance=within_m)
        else:
            hits = self.tree.query(point, predicate="intersects")
        out = []
        for i in hits:
            cm = self.zones[i]
            inside, _, outside = cm.placement(x, y)
            if inside or (within_m > 0 and outside <= within_m):
                out.append(cm.id)
        return out

    def query_lonlat(self, lon: float, lat: float, within_m: float = 0.0) -> list[str]:
        x, y = self.projection.forward(lon, lat)
        return self.query(x, y, within_m)

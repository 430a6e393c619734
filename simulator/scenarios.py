"""Named, seeded, repeatable scenarios: a timeline of protocol messages plus the alerts they
should raise.

Every scenario is placed in a real municipality of Rotterdam-Rijnmond, picked by the seed, and
declares the measures it needs as plain data (a contact ban with its radius, or an exclusion zone
as a WGS84 polygon) so that a backend can register them before the run. The same name, seed,
start time and topic root always give the same messages, byte for byte.

Alert types follow the design notes (section 5). Thresholds that belong to the backend are
assumptions of the scenarios, named below (`BATTERY_LOW_PCT`, `SILENT_AFTER_S`).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from device_protocol import Topics, codec
from simulator.device import DeviceSettings, Message, MessageKind, Role, SimulatedDevice
from simulator.errors import UnknownScenario
from simulator.geo import geometry_to_wgs84, to_metric
from simulator.gps import (
    OPEN_SKY,
    URBAN,
    CoverageGaps,
    DeviceClock,
    GpsProfile,
    GpsReceiver,
)
from simulator.movement import Mode, Movement, Pursue, Route, Stationary, Wander
from simulator.regions import (
    Municipality,
    load_municipalities,
    point_at_distance,
    random_point_in,
)

DEFAULT_START = 1_800_000_000.0  # 2027-01-15T08:00:00Z: a fixed start keeps timelines repeatable
BATTERY_LOW_PCT = 15  # assumed backend threshold for battery_low
SILENT_AFTER_S = 90.0  # EN 50136-style detection time for a silent device
RUN_ID = re.compile(r"^[A-Za-z0-9]{1,12}$")  # keeps device ids <= 64 and measure ids <= 40 chars

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: str
    role: Role
    municipality_code: str
    municipality_name: str
    police_unit: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "role": self.role.value,
            "municipality_code": self.municipality_code,
            "municipality_name": self.municipality_name,
            "police_unit": self.police_unit,
        }


@dataclass(frozen=True, slots=True)
class Measure:
    """A protective measure as plain data, for the backend to register before the run.

    A contact ban has `radius_m` around the victim's live position. An exclusion zone has a
    `polygon` of WGS84 (lon, lat) pairs, exterior ring, closed.
    """

    measure_id: str
    kind: Literal["contact_ban", "exclusion_zone"]
    offender_id: str
    victim_id: str | None = None
    radius_m: float | None = None
    polygon: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "measure_id": self.measure_id,
            "kind": self.kind,
            "offender_id": self.offender_id,
            "victim_id": self.victim_id,
        }
        if self.radius_m is not None:
            data["radius_m"] = self.radius_m
        if self.polygon is not None:
            data["geometry"] = {"type": "Polygon", "coordinates": [[list(p) for p in self.polygon]]}
        return data

    def zone_metric(self) -> BaseGeometry:
        """The exclusion zone in RD New metres."""
        if self.polygon is None:
            raise ValueError(f"measure {self.measure_id} has no polygon")
        return Polygon([to_metric(lat, lon) for lon, lat in self.polygon])


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    """An alert the backend should raise: between `min_count` and `max_count` of them.

    `trigger` is the index in the scenario's messages of the message that makes the alert due
    (for latency), or None when the alert is due to silence. `within_s` is how long, in wall
    time after the run, the backend may take. `flags` name what the alert should be marked with.
    """

    type: str
    device_id: str
    min_count: int = 1
    max_count: int = 1
    trigger: int | None = None
    flags: tuple[str, ...] = ()
    within_s: float = 10.0
    note: str = ""

    @property
    def optional(self) -> bool:
        return self.min_count == 0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    start_epoch: float
    description: str
    duration_s: float
    devices: tuple[DeviceInfo, ...]
    measures: tuple[Measure, ...]
    messages: tuple[Message, ...]
    expected: tuple[ExpectedAlert, ...]
    # Replayed faster than this (simulated seconds per wall second), the backend could no
    # longer judge it as the expected alerts say; the runner slows down to it. None: no limit.
    max_speed: float | None = None

    def registration(self) -> dict[str, Any]:
        """What a backend must know before the run: the devices and the measures, as plain data."""
        return {
            "scenario": self.name,
            "seed": self.seed,
            "devices": [d.to_dict() for d in self.devices],
            "measures": [m.to_dict() for m in self.measures],
        }


# -- building blocks ------------------------------------------------------------------------------
@dataclass
class _Builder:
    name: str
    seed: int
    start_epoch: float
    topics: Topics
    run_id: str = ""
    devices: list[SimulatedDevice] = field(default_factory=list)
    infos: list[DeviceInfo] = field(default_factory=list)

    def rng(self, label: str) -> random.Random:
        return random.Random(f"{self.name}:{self.seed}:{label}")

    def device_id(self, tag: str) -> str:
        """Device (and measure) ids; a run id suffix keeps repeated runs against one backend
        apart without changing anything else (the random streams are keyed by tag, not id)."""
        suffix = f"-{self.run_id}" if self.run_id else ""
        return f"sim-{self.name.replace('_', '-')}-{self.seed}-{tag}{suffix}"

    def municipality(self) -> Municipality:
        municipalities = list(load_municipalities().values())
        return self.rng("municipality").choice(municipalities)

    def region(self) -> BaseGeometry:
        return shapely.union_all([m.area for m in load_municipalities().values()])

    def add(
        self,
        tag: str,
        role: Role,
        movement: Movement,
        where: Municipality,
        settings: DeviceSettings,
        gps: GpsProfile = URBAN,
        clock: DeviceClock | None = None,
        coverage: CoverageGaps | None = None,
    ) -> SimulatedDevice:
        device_id = self.device_id(tag)
        device = SimulatedDevice(
            device_id,
            role,
            movement,
            topics=self.topics,
            start_epoch=self.start_epoch,
            rng=self.rng(f"device:{tag}"),
            gps=GpsReceiver(self.rng(f"gps:{tag}"), gps),
            settings=settings,
            clock=clock,
            coverage=coverage,
        )
        self.devices.append(device)
        self.infos.append(DeviceInfo(device_id, role, where.code, where.name, where.police_unit))
        return device

    def run(self, duration_s: float, step_s: float = 1.0) -> tuple[Message, ...]:
        """Advance all devices in lockstep (so pursuers see their target's current position)."""
        messages: list[Message] = []
        steps = math.ceil(duration_s / step_s)
        for i in range(1, steps + 1):
            t = min(duration_s, i * step_s)
            for device in self.devices:
                messages.extend(device.advance_to(t))
        messages.sort(key=lambda m: m.t)  # stable: device order breaks ties
        return tuple(messages)

    def scenario(
        self,
        description: str,
        duration_s: float,
        messages: tuple[Message, ...],
        expected: list[ExpectedAlert],
        measures: tuple[Measure, ...] = (),
        max_speed: float | None = None,
    ) -> Scenario:
        return Scenario(
            name=self.name,
            seed=self.seed,
            start_epoch=self.start_epoch,
            description=description,
            duration_s=duration_s,
            devices=tuple(self.infos),
            measures=measures,
            messages=messages,
            expected=tuple(expected),
            max_speed=max_speed,
        )


def _square_zone(centre: Point, width_m: float, height_m: float) -> tuple[tuple[float, float], ...]:
    """An axis-aligned rectangle in RD New around `centre`, as a closed WGS84 (lon, lat) ring."""
    cx, cy = centre
    w, h = width_m / 2, height_m / 2
    ring = Polygon([(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)])
    coords = geometry_to_wgs84(ring).exterior.coords
    return tuple((round(lon, 7), round(lat, 7)) for lon, lat in coords)


def fix_points(message: Message) -> list[Point]:
    """The reported positions of a loc message, in RD New metres (empty for other kinds)."""
    if message.kind not in (MessageKind.FIX, MessageKind.BATCH):
        return []
    return [to_metric(f.lat, f.lon) for f in codec.decode_fixes(message.payload)]


def _first(messages: tuple[Message, ...], predicate: Callable[[Message], bool]) -> int | None:
    return next((i for i, m in enumerate(messages) if predicate(m)), None)


def _first_inside(messages: tuple[Message, ...], device_id: str, zone: BaseGeometry) -> int | None:
    def inside(m: Message) -> bool:
        return m.device_id == device_id and any(
            zone.contains(ShapelyPoint(p)) for p in fix_points(m)
        )

    return _first(messages, inside)


def _first_within(
    messages: tuple[Message, ...], offender_id: str, victim_id: str, radius_m: float
) -> int | None:
    victim: Point | None = None
    for i, m in enumerate(messages):
        points = fix_points(m)
        if not points:
            continue
        if m.device_id == victim_id:
            victim = points[-1]
        elif (
            m.device_id == offender_id
            and victim is not None
            and any(math.dist(p, victim) <= radius_m for p in points)
        ):
            return i
    return None


def _alarm_index(messages: tuple[Message, ...], device_id: str) -> int | None:
    return _first(messages, lambda m: m.device_id == device_id and m.kind is MessageKind.ALARM)


# -- the scenarios --------------------------------------------------------------------------------
def approach(b: _Builder) -> Scenario:
    radius = 250.0
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    start = point_at_distance(home, 1_500.0, b.region(), b.rng("offender-start"))
    victim = b.add(
        "victim",
        Role.VICTIM,
        Stationary(home),
        town,
        DeviceSettings(report_interval_s=60, first_fix_s=0, battery_drain_per_h=1.0),
    )
    offender = b.add(
        "offender",
        Role.OFFENDER,
        Pursue(start, lambda: home, Mode.CYCLE, b.rng("pursue"), stop_at_m=30.0),
        town,
        DeviceSettings(report_interval_s=30, first_fix_s=5, battery_drain_per_h=1.0),
    )
    duration = 900.0
    messages = b.run(duration)
    ban = Measure(
        f"{b.device_id('ban')}",
        "contact_ban",
        offender.device_id,
        victim.device_id,
        radius_m=radius,
    )
    trigger = _first_within(messages, offender.device_id, victim.device_id, radius)
    return b.scenario(
        "An offender cycles from 1.5 km away to 30 m from the victim's home (contact ban 250 m).",
        duration,
        messages,
        [
            ExpectedAlert("proximity", offender.device_id, trigger=trigger),
            ExpectedAlert("approach", offender.device_id, min_count=0, note="pre-alert ring"),
        ],
        (ban,),
    )


def zone_breach(b: _Builder) -> Scenario:
    town = b.municipality()
    protected = random_point_in(town.area, b.rng("zone"))
    zone = Measure(
        b.device_id("zone"),
        "exclusion_zone",
        b.device_id("offender"),
        b.device_id("victim"),
        polygon=_square_zone(protected, 400.0, 400.0),
    )
    start = point_at_distance(protected, 3_000.0, b.region(), b.rng("offender-start"))
    far = point_at_distance(protected, 4_000.0, b.region(), b.rng("victim-home"))
    b.add(
        "victim",
        Role.VICTIM,
        Stationary(far),
        town,
        DeviceSettings(report_interval_s=60, first_fix_s=0),
    )
    offender = b.add(
        "offender",
        Role.OFFENDER,
        Route([start, protected], Mode.DRIVE, b.rng("route")),
        town,
        DeviceSettings(report_interval_s=30, first_fix_s=3),
    )
    duration = 900.0
    messages = b.run(duration)
    trigger = _first_inside(messages, offender.device_id, zone.zone_metric())
    return b.scenario(
        "An offender drives 3 km into the centre of a 400 m x 400 m exclusion zone and stays.",
        duration,
        messages,
        [
            ExpectedAlert("zone_breach", offender.device_id, trigger=trigger),
            ExpectedAlert("approach", offender.device_id, min_count=0, note="pre-alert ring"),
        ],
        (zone,),
    )


def panic(b: _Builder) -> Scenario:
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    victim = b.add(
        "victim",
        Role.VICTIM,
        Wander(home, town.area, Mode.WALK, b.rng("walk")),
        town,
        DeviceSettings(report_interval_s=60, first_fix_s=0, alarm_retry_s=15, alarm_retries=1),
    )
    victim.press(120.0)
    duration = 240.0
    messages = b.run(duration)
    return b.scenario(
        "A walking victim presses panic; no ack arrives, so the device retransmits the same id.",
        duration,
        messages,
        [
            ExpectedAlert(
                "panic", victim.device_id, trigger=_alarm_index(messages, victim.device_id)
            )
        ],
    )


def silent(b: _Builder) -> Scenario:
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    offender = b.add(
        "offender",
        Role.OFFENDER,
        Wander(home, town.area, Mode.WALK, b.rng("walk")),
        town,
        DeviceSettings(report_interval_s=30, first_fix_s=0, heartbeat_interval_s=60),
    )
    offender.go_silent(300.0)
    duration = 300.0 + SILENT_AFTER_S + 60.0
    messages = b.run(duration)
    return b.scenario(
        "An offender's monitor reports normally for 5 minutes, then goes silent (no Last Will).",
        duration,
        messages,
        [ExpectedAlert("device_silent", offender.device_id, within_s=SILENT_AFTER_S + 60.0)],
    )


def battery(b: _Builder) -> Scenario:
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    victim = b.add(
        "victim",
        Role.VICTIM,
        Stationary(home),
        town,
        DeviceSettings(
            report_interval_s=60,
            first_fix_s=0,
            heartbeat_interval_s=60,
            battery_pct=24.0,
            battery_drain_per_h=60.0,
        ),
    )
    duration = 20 * 60.0
    messages = b.run(duration)

    def low(m: Message) -> bool:
        if m.device_id != victim.device_id or m.kind is not MessageKind.STATUS:
            return False
        batt = codec.decode_status(m.payload).batt
        return batt is not None and batt <= BATTERY_LOW_PCT

    return b.scenario(
        f"A victim's device drains from 24% to 4% in 20 minutes "
        f"(battery_low at {BATTERY_LOW_PCT}%).",
        duration,
        messages,
        [ExpectedAlert("battery_low", victim.device_id, trigger=_first(messages, low))],
    )


JITTER_OFFSET_M = 8.0  # the offender's true path runs this far outside the zone border


def jitter(b: _Builder) -> Scenario:
    town = b.municipality()
    centre = random_point_in(town.area, b.rng("zone"))
    width, height = 600.0, 300.0
    zone = Measure(
        b.device_id("zone"),
        "exclusion_zone",
        b.device_id("offender"),
        b.device_id("victim"),
        polygon=_square_zone(centre, width, height),
    )
    y = centre[1] + height / 2 + JITTER_OFFSET_M  # just north of the northern border
    west, east = (centre[0] - width / 2 + 50, y), (centre[0] + width / 2 - 50, y)
    far = point_at_distance(centre, 4_000.0, b.region(), b.rng("victim-home"))
    b.add(
        "victim",
        Role.VICTIM,
        Stationary(far),
        town,
        DeviceSettings(report_interval_s=60, first_fix_s=0),
    )
    offender = b.add(
        "offender",
        Role.OFFENDER,
        Route([west, east, west, east, west], Mode.WALK, b.rng("route")),
        town,
        DeviceSettings(report_interval_s=10, first_fix_s=2),
        gps=GpsProfile(acc_median_m=12.0, outlier_rate=0.0),
    )
    duration = 20 * 60.0
    messages = b.run(duration)
    return b.scenario(
        f"An offender walks back and forth {JITTER_OFFSET_M:.0f} m outside a zone border; "
        "GPS noise puts some fixes inside. At most one breach (raised possible, and then "
        "perhaps confirmed: the same alert), never flapping.",
        duration,
        messages,
        [
            # A breach raised "possible" and then confirmed is two events of the engine and
            # one alert (the confirmation upgrades it); a second entry would need a clearing
            # between, which the noise never makes.
            ExpectedAlert(
                "zone_breach", offender.device_id, min_count=0, max_count=1,
                note="no flapping: a possible breach, perhaps confirmed, at most",
            ),
            ExpectedAlert("approach", offender.device_id, min_count=0, note="pre-alert ring"),
        ],
        (zone,),
    )


def gap_batch(b: _Builder) -> Scenario:
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    gap = (120.0, 120.0 + 30 * 60.0)
    victim = b.add(
        "victim",
        Role.VICTIM,
        Wander(home, town.area, Mode.WALK, b.rng("walk")),
        town,
        DeviceSettings(report_interval_s=15, first_fix_s=0, heartbeat_interval_s=300),
        coverage=CoverageGaps((gap,)),
    )
    victim.press(600.0)
    duration = gap[1] + 180.0
    messages = b.run(duration)
    return b.scenario(
        "A victim loses coverage for 30 minutes, presses panic inside the gap; when coverage "
        "returns the device sends the alarm, then its buffered fixes in batches.",
        duration,
        messages,
        [
            ExpectedAlert(
                "panic",
                victim.device_id,
                trigger=_alarm_index(messages, victim.device_id),
                flags=("late",),
            )
        ],
    )


CLOCK_SKEW_MAX_SPEED = 60.0


def clock_skew(b: _Builder) -> Scenario:
    town = b.municipality()
    home = random_point_in(town.area, b.rng("home"))
    victim = b.add(
        "victim",
        Role.VICTIM,
        Wander(home, town.area, Mode.CYCLE, b.rng("ride")),
        town,
        DeviceSettings(report_interval_s=30, first_fix_s=0),
        gps=OPEN_SKY,
        clock=DeviceClock(offset_s=-2 * 3600.0),
    )
    victim.press(90.0)
    duration = 180.0
    messages = b.run(duration)
    return b.scenario(
        "A cycling victim whose device clock runs two hours behind presses panic.",
        duration,
        messages,
        [
            ExpectedAlert(
                "panic",
                victim.device_id,
                trigger=_alarm_index(messages, victim.device_id),
                flags=("clock_skew",),
            )
        ],
        # A wrong clock is told apart from a buffered alarm by the fixes just before it (the
        # device is in coverage). In one burst the alarm, on a lane of its own, overtakes them
        # and looks buffered ("late"); at this pace the fixes are in first (3 s in all; at 300
        # times, 0.6 s, a fix lane busy with other work was once still behind the alarm).
        max_speed=CLOCK_SKEW_MAX_SPEED,
    )


SCENARIOS: dict[str, Callable[[_Builder], Scenario]] = {
    "approach": approach,
    "zone_breach": zone_breach,
    "panic": panic,
    "silent": silent,
    "battery": battery,
    "jitter": jitter,
    "gap_batch": gap_batch,
    "clock_skew": clock_skew,
}


def build(
    name: str,
    seed: int = 0,
    start_epoch: float = DEFAULT_START,
    topics: Topics | None = None,
    run_id: str = "",
) -> Scenario:
    """Build a scenario: the same arguments always give the same messages. A `run_id`
    (letters, digits, at most 12) is appended to every device and measure id."""
    if run_id and not RUN_ID.match(run_id):
        raise ValueError("run_id: 1-12 letters or digits")
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return builder(_Builder(name, seed, start_epoch, topics or Topics(), run_id))

"""Grouping and deduplication of health alerts, so that they never flood the desk. Pure.

`group_health_signals(signals, open_health_alerts, now, window)` turns the active health signals
of many devices into a bounded set of desk actions:

- one alert per case and type (devices without a case: one per device and type), listing the
  devices concerned;
- an open alert for the same case and type is updated (devices added) rather than duplicated,
  and left alone when nothing changed;
- when more than `storm_threshold` devices were last heard within `window` and are now silent
  (a broker or network outage rather than many separate incidents), each affected desk also gets
  one storm summary (updated if one is open), and the per-case silent alerts are marked
  `in_storm` so the console can fold them under it. An open summary is updated only when its
  counts changed (`OpenHealthAlert.device_count`, `total_device_count`: the last ones it got).
  The devices of exercise cases (`exercise_cases`) make storms of their own, apart from the live
  ones: they never count towards, nor are folded under, a live summary, and their summaries are
  exercises (`StormSummary.exercise`), routed to exercise endpoints only.

So 100 silent devices give at most one alert per case plus one summary per desk.

Signals are per episode: once the desk closed an alert covering a device and type (resolved,
false alarm, cancelled), that device's signal of that type raises nothing until something new is
reported (`closed_episode`): silence until the device is heard again, no fix until a new fix, and
tamper and battery low until a new status report. `closed` maps (device, type) to the time the
latest such closed alert began to cover the device: its raising, or, for a device added to the
open alert later, the addition. Closed episodes still count towards a storm.

A panic alarm never passes through this grouping, and neither does any other urgent alert (fall,
zone breach, proximity, tamper): they are raised, routed and delivered on their own path at once,
never grouped, delayed or suppressed. This function only accepts the health types
`device_silent`, `battery_low` and `no_fix` and raises `NotGroupable` for anything else, before it
decides anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.supervision.errors import NotGroupable
from backend.supervision.health import GROUPABLE_TYPES, HealthSignal

STORM_TYPE = "device_silent_storm"
DEFAULT_STORM_THRESHOLD = 10


@dataclass(frozen=True, slots=True)
class OpenHealthAlert:
    """A health alert that is open on the desk. Storm summaries have type `STORM_TYPE`, no case,
    the desk they were raised for, the counts they last got (None: unknown), and whether they
    summarise an exercise's devices."""

    alert_id: str
    case_id: str | None
    type: str
    device_ids: frozenset[str]
    desk_code: str | None = None
    device_count: int | None = None
    total_device_count: int | None = None
    exercise: bool = False


@dataclass(frozen=True, slots=True)
class GroupedHealthAlert:
    """A new desk alert for one case (or one unassigned device) and one type."""

    case_id: str | None
    type: str
    device_ids: tuple[str, ...]
    since: datetime | None
    desk_code: str | None
    in_storm: bool


@dataclass(frozen=True, slots=True)
class HealthAlertUpdate:
    """An open alert that gains devices (`since`: the earliest start of their signals)."""

    alert_id: str
    case_id: str | None
    type: str
    device_ids: tuple[str, ...]
    added_device_ids: tuple[str, ...]
    in_storm: bool
    since: datetime | None = None
    desk_code: str | None = None

    def as_new(self) -> GroupedHealthAlert:
        """The added devices as a new alert: for when the desk closed the open one meanwhile."""
        return GroupedHealthAlert(
            case_id=self.case_id,
            type=self.type,
            device_ids=self.added_device_ids,
            since=self.since,
            desk_code=self.desk_code,
            in_storm=self.in_storm,
        )


@dataclass(frozen=True, slots=True)
class StormSummary:
    """One desk-level summary of a silence storm; `alert_id` is set when it updates an open one
    (whose counts changed). An exercise's summary counts the devices of exercise cases only, a
    live one those of live cases only."""

    desk_code: str | None
    device_count: int
    total_device_count: int
    window_start: datetime
    alert_id: str | None = None
    exercise: bool = False


@dataclass(frozen=True, slots=True)
class GroupingDecision:
    new: tuple[GroupedHealthAlert, ...]
    updates: tuple[HealthAlertUpdate, ...]
    storms: tuple[StormSummary, ...]
    suppressed: int  # signals already covered by an open alert or repeated in the batch

    @property
    def desk_actions(self) -> int:
        return len(self.new) + len(self.updates) + len(self.storms)


def closed_episode(signal: HealthSignal, closed: Mapping[tuple[str, str], datetime]) -> bool:
    """True when the desk already closed an alert for this signal's episode: the latest closed
    alert of the device and type (`closed`, by (device id, type): when it began to cover the
    device, by its raising or by the device's addition to it) covered it when nothing newer
    than `signal.reported_at` had been reported (not heard, no fix, no status report since).
    An unknown `reported_at` is covered by any closed alert."""
    covered_at = closed.get((signal.device_id, signal.type))
    if covered_at is None:
        return False
    return signal.reported_at is None or signal.reported_at <= covered_at


def _group_key(case_id: str | None, device_ids: Iterable[str], kind: str) -> tuple[str, str]:
    owner = case_id if case_id is not None else "device:" + min(device_ids)
    return owner, kind


def group_health_signals(
    signals: Iterable[HealthSignal],
    open_health_alerts: Iterable[OpenHealthAlert],
    now: datetime,
    window: timedelta,
    *,
    storm_threshold: int = DEFAULT_STORM_THRESHOLD,
    closed: Mapping[tuple[str, str], datetime] | None = None,
    closed_storms: Mapping[tuple[str | None, bool], int] | None = None,
    exercise_cases: Collection[str] = frozenset(),
) -> GroupingDecision:
    """Group and deduplicate health signals into new alerts, updates and storm summaries;
    signals of an episode the desk closed (`closed_episode`) are suppressed, and so is a desk's
    new storm summary while the desk has closed one of this storm's window (`closed_storms`: by
    desk and exercise, its device count) and no more of its devices are silent than it counted.
    The devices of `exercise_cases` storm apart from the live ones (one summary per desk each)."""
    batch = list(signals)
    for signal in batch:
        if signal.type not in GROUPABLE_TYPES:
            raise NotGroupable(
                f"signal type {signal.type!r} is not a health type; urgent alerts are never grouped"
            )

    # One signal per (device, type); later duplicates in the batch are suppressed.
    unique: dict[tuple[str, str], HealthSignal] = {}
    for signal in batch:
        unique.setdefault((signal.device_id, signal.type), signal)
    suppressed = len(batch) - len(unique)

    def drill(signal: HealthSignal) -> bool:
        return signal.case_id is not None and signal.case_id in exercise_cases

    window_start = now - window
    # The devices silent within the window, live (False) and of exercises (True) apart.
    storm_devices: dict[bool, set[str]] = {False: set(), True: set()}
    for s in unique.values():
        if s.type == "device_silent" and s.since is not None and window_start <= s.since <= now:
            storm_devices[drill(s)].add(s.device_id)
    in_storm = {kind: len(devices) > storm_threshold for kind, devices in storm_devices.items()}

    open_by_key: dict[tuple[str, str], OpenHealthAlert] = {}
    open_storms: dict[tuple[str | None, bool], OpenHealthAlert] = {}
    for alert in open_health_alerts:
        if alert.type == STORM_TYPE:
            open_storms[(alert.desk_code, alert.exercise)] = alert
        elif alert.device_ids or alert.case_id is not None:
            open_by_key[_group_key(alert.case_id, alert.device_ids, alert.type)] = alert

    groups: dict[tuple[str, str], list[HealthSignal]] = defaultdict(list)
    for signal in unique.values():
        if closed and closed_episode(signal, closed):
            suppressed += 1
            continue
        groups[_group_key(signal.case_id, [signal.device_id], signal.type)].append(signal)

    new: list[GroupedHealthAlert] = []
    updates: list[HealthAlertUpdate] = []
    for key in sorted(groups):
        members = groups[key]
        first = members[0]
        device_ids = sorted({s.device_id for s in members})
        storm_flag = in_storm[drill(first)] and first.type == "device_silent"
        existing = open_by_key.get(key)
        if existing is None:
            known_since = [s.since for s in members if s.since is not None]
            new.append(
                GroupedHealthAlert(
                    case_id=first.case_id,
                    type=first.type,
                    device_ids=tuple(device_ids),
                    since=min(known_since) if known_since else None,
                    desk_code=first.desk_code,
                    in_storm=storm_flag,
                )
            )
            continue
        added = [d for d in device_ids if d not in existing.device_ids]
        suppressed += len(device_ids) - len(added)
        if added:
            added_since = [s.since for s in members if s.device_id in added and s.since]
            updates.append(
                HealthAlertUpdate(
                    alert_id=existing.alert_id,
                    case_id=existing.case_id,
                    type=existing.type,
                    device_ids=tuple(sorted(existing.device_ids | set(added))),
                    added_device_ids=tuple(added),
                    in_storm=storm_flag,
                    since=min(added_since) if added_since else None,
                    desk_code=existing.desk_code or first.desk_code,
                )
            )

    storms: list[StormSummary] = []
    for exercise in (False, True):
        if not in_storm[exercise]:
            continue
        per_desk: dict[str | None, int] = defaultdict(int)
        storm_set = storm_devices[exercise]
        for (device_id, kind), signal in unique.items():
            if kind == "device_silent" and device_id in storm_set:
                per_desk[signal.desk_code] += 1
        total = len(storm_set)
        for desk in sorted(per_desk, key=lambda d: (d is None, d or "")):
            existing_storm = open_storms.get((desk, exercise))
            closed_count = (closed_storms or {}).get((desk, exercise))
            if existing_storm is None and closed_count is not None \
                    and per_desk[desk] <= closed_count:
                continue  # the desk closed it, and the storm has not grown since
            if existing_storm is not None and (
                existing_storm.device_count, existing_storm.total_device_count
            ) == (per_desk[desk], total):
                continue  # open and unchanged: left alone
            storms.append(
                StormSummary(
                    desk_code=desk,
                    device_count=per_desk[desk],
                    total_device_count=total,
                    window_start=window_start,
                    alert_id=existing_storm.alert_id if existing_storm else None,
                    exercise=exercise,
                )
            )
    return GroupingDecision(
        new=tuple(new), updates=tuple(updates), storms=tuple(storms), suppressed=suppressed
    )

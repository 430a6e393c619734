"""Per-device supervision, modelled on EN 50136 reporting times. Pure.

`check_fleet(fleet, now, thresholds, pursuit)` returns the conditions active at `now` for every
device of a pass at once, from columns (a pass reads every active device: 150,000 in the pilot's
sizing, almost all of them healthy, so only the devices with a signal become Python objects);
`check_device(health, now, thresholds, pursuit)` is the same decision for one device:

- `device_silent`: nothing heard for `silent_after_s` (90 s) or, in pursuit mode (an alert is
  open), `silent_after_pursuit_s` (20 s). Detection is due at exactly that age.
- `battery_low`: below `battery_low_pct`; with hysteresis: once raised (`health.battery_low_open`)
  it stays active until the level reaches `battery_recover_pct`. Never raised while charging.
- `tamper`: the device reports tamper. This is an urgent signal (P1 for an offender strap): it
  goes the normal alert route and never through health grouping.
- `no_fix`: the device is online (not silent, not marked offline) but its last fix is older than
  `no_fix_after_s` (`no_fix_after_pursuit_s` in pursuit mode), or it never had one.

A time more than `clock_tolerance_s` (60 s) ahead of `now` is not trusted (`ahead_of_clock`): a
clock that ran ahead wrote it, and since the newest time is kept, it would hide the device until
real time caught up with it. It counts as unknown: a last contact ahead makes the device silent
at once (we cannot tell when it was last heard), a last fix ahead counts as no fix, and a status
report ahead rests nothing on it (`reported_at` None).

Signals are levels, not edges: the grouping step turns them into new or updated desk alerts.
Each signal carries `reported_at`, the newest report it rests on (last heard for silence, last
fix for no fix, last status report for battery and tamper), so that an alert the desk closed
covers its signal until something new is reported (`grouping.closed_episode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from backend.supervision.errors import InvalidThresholds

HealthSignalType = Literal["device_silent", "battery_low", "no_fix", "tamper"]
# Health signals that may be grouped into desk alerts (DESIGN.md section 5: P3, VT desk).
GROUPABLE_TYPES: frozenset[str] = frozenset({"device_silent", "battery_low", "no_fix"})
# Signals that go straight to the alert route, never grouped, delayed or suppressed.
URGENT_TYPES: frozenset[str] = frozenset({"tamper"})


@dataclass(frozen=True, slots=True)
class SupervisionThresholds:
    silent_after_s: float = 90.0
    silent_after_pursuit_s: float = 20.0
    battery_low_pct: int = 15
    battery_recover_pct: int = 20
    no_fix_after_s: float = 300.0
    no_fix_after_pursuit_s: float = 60.0
    clock_tolerance_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.clock_tolerance_s >= 0:
            raise InvalidThresholds("clock_tolerance_s >= 0")
        if not 0 < self.silent_after_pursuit_s <= self.silent_after_s:
            raise InvalidThresholds("0 < silent_after_pursuit_s <= silent_after_s")
        if not 0 < self.no_fix_after_pursuit_s <= self.no_fix_after_s:
            raise InvalidThresholds("0 < no_fix_after_pursuit_s <= no_fix_after_s")
        if not 0 <= self.battery_low_pct < self.battery_recover_pct <= 100:
            raise InvalidThresholds(
                "0 <= battery_low_pct < battery_recover_pct <= 100 (hysteresis)"
            )


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What is known about one device at a moment (from the hot state)."""

    device_id: str
    case_id: str | None
    last_seen: datetime | None
    online: bool | None = None
    battery_pct: int | None = None
    charging: bool = False
    tamper: bool = False
    last_fix_at: datetime | None = None
    battery_low_open: bool = False
    desk_code: str | None = None
    last_status_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HealthSignal:
    """One active condition of one device. `since` is when the condition began (for silence:
    when the device was last heard), or None when unknown. `reported_at` is the newest report
    the condition rests on: the last contact (silence), the last fix (no fix) or the last status
    report (battery, tamper); None when unknown."""

    type: str
    device_id: str
    case_id: str | None
    since: datetime | None
    detail: str
    desk_code: str | None = None
    reported_at: datetime | None = None

    @property
    def urgent(self) -> bool:
        return self.type not in GROUPABLE_TYPES


# Times in a `FleetHealth` are whole microseconds since the epoch (exact, like a datetime);
# UNKNOWN where nothing is known. It is the smallest int64, so the later of two times is `max`.
UNKNOWN: int = int(np.iinfo(np.int64).min)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(at: datetime | None) -> int:
    """A time as whole microseconds since the epoch (UNKNOWN for None); `at` must be aware."""
    return UNKNOWN if at is None else (at - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime | None:
    return None if us == UNKNOWN else _EPOCH + timedelta(microseconds=int(us))


def _duration_us(seconds: float) -> int:
    return to_us(_EPOCH + timedelta(seconds=seconds))  # rounded as a timedelta rounds


@dataclass(frozen=True)
class FleetHealth:
    """What is known about many devices at a moment, as columns: row i is one device.

    Times are int64 microseconds since the epoch (`to_us`), UNKNOWN where nothing is known;
    an unknown battery level is NaN; `offline` is True only for a device known to be offline
    (its Last Will arrived); `last_status_at` (the last status report) None: all unknown."""

    device_ids: Sequence[str]
    case_ids: Sequence[str | None]
    desk_codes: Sequence[str | None]
    last_seen: np.ndarray
    last_fix_at: np.ndarray
    offline: np.ndarray
    battery_pct: np.ndarray
    charging: np.ndarray
    tamper: np.ndarray
    battery_low_open: np.ndarray
    last_status_at: np.ndarray | None = None

    @classmethod
    def of(cls, healths: Sequence[DeviceHealth]) -> FleetHealth:
        return cls(
            device_ids=[h.device_id for h in healths],
            case_ids=[h.case_id for h in healths],
            desk_codes=[h.desk_code for h in healths],
            last_seen=np.array([to_us(h.last_seen) for h in healths], dtype=np.int64),
            last_fix_at=np.array([to_us(h.last_fix_at) for h in healths], dtype=np.int64),
            offline=np.array([h.online is False for h in healths], dtype=bool),
            battery_pct=np.array([h.battery_pct for h in healths], dtype=float),
            charging=np.array([h.charging for h in healths], dtype=bool),
            tamper=np.array([h.tamper for h in healths], dtype=bool),
            battery_low_open=np.array([h.battery_low_open for h in healths], dtype=bool),
            last_status_at=np.array([to_us(h.last_status_at) for h in healths], dtype=np.int64),
        )


def _age_us(now: int, at: np.ndarray) -> np.ndarray:
    """now - at, and 0 where `at` is unknown (callers mask those rows)."""
    return now - np.where(at == UNKNOWN, now, at)


def ahead_of_clock(
    times: np.ndarray, now: datetime, thresholds: SupervisionThresholds = SupervisionThresholds()
) -> np.ndarray:
    """Where a time (microseconds, `to_us`) is more than `clock_tolerance_s` ahead of `now`:
    not trusted (a clock that ran ahead), treated as unknown by `check_fleet`."""
    return (times != UNKNOWN) & (times > to_us(now) + _duration_us(thresholds.clock_tolerance_s))


def check_fleet(
    fleet: FleetHealth,
    now: datetime,
    thresholds: SupervisionThresholds = SupervisionThresholds(),
    pursuit: np.ndarray | None = None,
) -> list[HealthSignal]:
    """The conditions active at `now` for every device of the fleet, device by device in the
    fleet's order (and per device: silent, battery low, tamper, no fix). `pursuit` marks the
    devices in pursuit mode (an urgent alert of their case is open)."""
    if pursuit is None:
        pursuit = np.zeros(len(fleet.device_ids), dtype=bool)
    at = to_us(now)
    seen_ahead = ahead_of_clock(fleet.last_seen, now, thresholds)
    last_seen = np.where(seen_ahead, UNKNOWN, fleet.last_seen)
    seen_known = last_seen != UNKNOWN
    seen_age = _age_us(at, last_seen)
    silent_after = np.where(
        pursuit,
        _duration_us(thresholds.silent_after_pursuit_s), _duration_us(thresholds.silent_after_s),
    )
    silent = ~seen_known | (seen_age >= silent_after)

    limit = np.where(
        fleet.battery_low_open, thresholds.battery_recover_pct, thresholds.battery_low_pct
    )
    battery = np.nan_to_num(fleet.battery_pct, nan=np.inf)  # unknown: never low
    battery_low = ~fleet.charging & (battery < limit)

    fix_ahead = ahead_of_clock(fleet.last_fix_at, now, thresholds)
    last_fix = np.where(fix_ahead, UNKNOWN, fleet.last_fix_at)
    fix_known = last_fix != UNKNOWN
    fix_age = _age_us(at, last_fix)
    no_fix_after = np.where(
        pursuit,
        _duration_us(thresholds.no_fix_after_pursuit_s), _duration_us(thresholds.no_fix_after_s),
    )
    no_fix = ~silent & ~fleet.offline & (~fix_known | (fix_age >= no_fix_after))

    status_at = fleet.last_status_at
    if status_at is not None:
        status_at = np.where(ahead_of_clock(status_at, now, thresholds), UNKNOWN, status_at)
    signals: list[HealthSignal] = []

    def signal(
        i: int, kind: str, since: datetime | None, detail: str, reported_at: datetime | None
    ) -> None:
        signals.append(HealthSignal(
            kind, fleet.device_ids[i], fleet.case_ids[i], since, detail, fleet.desk_codes[i],
            reported_at,
        ))

    for i in np.flatnonzero(silent | battery_low | fleet.tamper | no_fix).tolist():
        status = None if status_at is None else from_us(status_at[i])
        if silent[i]:
            seen = from_us(last_seen[i])
            if seen_ahead[i]:
                ahead = int((fleet.last_seen[i] - at) / 1e6)
                detail = f"last seen {ahead} s ahead of the clock: not trusted"
            elif seen_known[i]:
                detail = f"silent for {int(seen_age[i] / 1e6)} s"
            else:
                detail = "never heard"
            signal(i, "device_silent", seen, detail, seen)
        if battery_low[i]:
            signal(i, "battery_low", None, f"battery {int(fleet.battery_pct[i])}%", status)
        if fleet.tamper[i]:
            signal(i, "tamper", None, "tamper reported", status)
        if no_fix[i]:
            if fix_known[i]:
                fix = from_us(last_fix[i])
                signal(i, "no_fix", fix, f"last fix {int(fix_age[i] / 1e6)} s ago", fix)
            elif fix_ahead[i]:
                ahead = int((fleet.last_fix_at[i] - at) / 1e6)
                signal(i, "no_fix", None, f"last fix {ahead} s ahead of the clock: not trusted",
                       None)
            else:
                signal(i, "no_fix", None, "no fix yet", None)
    return signals


def check_device(
    health: DeviceHealth,
    now: datetime,
    thresholds: SupervisionThresholds = SupervisionThresholds(),
    pursuit: bool = False,
) -> list[HealthSignal]:
    """The conditions active for one device at `now` (`check_fleet` for a fleet of one)."""
    return check_fleet(FleetHealth.of([health]), now, thresholds, np.array([pursuit]))


def partition_signals(signals: list[HealthSignal]) -> tuple[list[HealthSignal], list[HealthSignal]]:
    """(urgent, groupable): urgent signals go to the alert route at once, the rest to grouping."""
    urgent = [s for s in signals if s.urgent]
    return urgent, [s for s in signals if not s.urgent]

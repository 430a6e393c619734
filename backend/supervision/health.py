"""Per-device supervision, modelled on EN 50136 reporting times. Pure.

`check_device(health, now, thresholds, pursuit)` returns the conditions active at `now`:

- `device_silent`: nothing heard for `silent_after_s` (90 s) or, in pursuit mode (an alert is
  open), `silent_after_pursuit_s` (20 s). Detection is due at exactly that age.
- `battery_low`: below `battery_low_pct`; with hysteresis: once raised (`health.battery_low_open`)
  it stays active until the level reaches `battery_recover_pct`. Never raised while charging.
- `tamper`: the device reports tamper. This is an urgent signal (P1 for an offender strap): it
  goes the normal alert route and never through health grouping.
- `no_fix`: the device is online (not silent, not marked offline) but its last fix is older than
  `no_fix_after_s` (`no_fix_after_pursuit_s` in pursuit mode), or it never had one.

Signals are levels, not edges: the grouping step turns them into new or updated desk alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

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

    def __post_init__(self) -> None:
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


@dataclass(frozen=True, slots=True)
class HealthSignal:
    """One active condition of one device. `since` is when the condition began (for silence:
    when the device was last heard), or None when unknown."""

    type: str
    device_id: str
    case_id: str | None
    since: datetime | None
    detail: str
    desk_code: str | None = None

    @property
    def urgent(self) -> bool:
        return self.type not in GROUPABLE_TYPES


def check_device(
    health: DeviceHealth,
    now: datetime,
    thresholds: SupervisionThresholds = SupervisionThresholds(),
    pursuit: bool = False,
) -> list[HealthSignal]:
    """The conditions active for one device at `now`."""
    signals: list[HealthSignal] = []

    def signal(kind: str, since: datetime | None, detail: str) -> None:
        signals.append(
            HealthSignal(kind, health.device_id, health.case_id, since, detail, health.desk_code)
        )

    silent_after = timedelta(
        seconds=thresholds.silent_after_pursuit_s if pursuit else thresholds.silent_after_s
    )
    silent = health.last_seen is None or now - health.last_seen >= silent_after
    if silent:
        signal(
            "device_silent",
            health.last_seen,
            "never heard"
            if health.last_seen is None
            else f"silent for {int((now - health.last_seen).total_seconds())} s",
        )

    if health.battery_pct is not None and not health.charging:
        limit = (
            thresholds.battery_recover_pct
            if health.battery_low_open
            else thresholds.battery_low_pct
        )
        if health.battery_pct < limit:
            signal("battery_low", None, f"battery {health.battery_pct}%")

    if health.tamper:
        signal("tamper", None, "tamper reported")

    if not silent and health.online is not False:
        no_fix_after = timedelta(
            seconds=thresholds.no_fix_after_pursuit_s if pursuit else thresholds.no_fix_after_s
        )
        if health.last_fix_at is None:
            signal("no_fix", None, "no fix yet")
        elif now - health.last_fix_at >= no_fix_after:
            signal(
                "no_fix",
                health.last_fix_at,
                f"last fix {int((now - health.last_fix_at).total_seconds())} s ago",
            )
    return signals


def partition_signals(signals: list[HealthSignal]) -> tuple[list[HealthSignal], list[HealthSignal]]:
    """(urgent, groupable): urgent signals go to the alert route at once, the rest to grouping."""
    urgent = [s for s in signals if s.urgent]
    return urgent, [s for s in signals if not s.urgent]

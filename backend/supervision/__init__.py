"""Supervision: device health decisions modelled on EN 50136 reporting times. Pure.

- `health`: `check_fleet(fleet, now, thresholds, pursuit) -> list[HealthSignal]` over columns
  of many devices, `check_device(health, now, thresholds, pursuit)` for one (device silent
  within 90 s, 20 s in pursuit mode; battery low with hysteresis; tamper; no fix).
- `grouping`: `group_health_signals(signals, open_health_alerts, now, window) -> GroupingDecision`
  (one alert per case and type, open alerts updated not duplicated, a desk-level storm summary);
  `closed_episode(signal, closed)`: the desk closed an alert for this episode (nothing new
  reported since), so it raises nothing again.

A panic alarm never passes through this package: urgent alerts (panic, fall, zone breach,
proximity, tamper) are never grouped, delayed or suppressed, and the grouping rejects them by type
(`NotGroupable`).
"""

from backend.supervision.errors import InvalidThresholds, NotGroupable, SupervisionError
from backend.supervision.grouping import (
    STORM_TYPE,
    GroupedHealthAlert,
    GroupingDecision,
    HealthAlertUpdate,
    OpenHealthAlert,
    StormSummary,
    closed_episode,
    group_health_signals,
)
from backend.supervision.health import (
    GROUPABLE_TYPES,
    DeviceHealth,
    FleetHealth,
    HealthSignal,
    SupervisionThresholds,
    check_device,
    check_fleet,
    partition_signals,
)

__all__ = [
    "GROUPABLE_TYPES",
    "STORM_TYPE",
    "DeviceHealth",
    "FleetHealth",
    "GroupedHealthAlert",
    "GroupingDecision",
    "HealthAlertUpdate",
    "HealthSignal",
    "InvalidThresholds",
    "NotGroupable",
    "OpenHealthAlert",
    "StormSummary",
    "SupervisionError",
    "SupervisionThresholds",
    "check_device",
    "check_fleet",
    "closed_episode",
    "group_health_signals",
    "partition_signals",
]

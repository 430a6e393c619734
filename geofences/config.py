"""Tuning of the geofence engine: one frozen dataclass, passed in (never read from globals)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geofences.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class GeofenceConfig:
    """Thresholds of the state machine and of validation. Distances in metres, times in seconds.

    - `crs`: metric CRS for every distance (RD New by default); never degrees.
    - `timezone`: the local time of weekly time windows.
    - `enter_confirmations`: consecutive fixes needed to enter a zone or ring (debounce) ...
    - `enter_dwell_s`: ... or this many seconds spent there since the first such fix (None: off).
    - `immediate_depth_m`: a fix this far inside, beyond its accuracy, enters at once (None: off).
    - `repeat_confirmations`: ... or this many confirmed fixes in the zone (not in a row: an
      offender weaving in and out along its border) within `repeat_window_s` of the first
      (None: off).
    - `exit_confirmations`: consecutive clearly-outside fixes needed to leave.
    - `exit_margin_m`: hysteresis; leaving needs the whole accuracy circle this far outside.
    - `default_accuracy_m`: accuracy assumed for a fix that reports none.
    - `max_possible_accuracy_m`: a fix less accurate than this cannot start a "possible" breach.
    - `crossing_min_depth_m`: a straight segment between two fixes outside the zone counts as a
      crossing only if it passes at least this deep inside (avoids corner clipping).
    - `segment_max_gap_s`: no segment test between fixes further apart in time.
    - `partner_max_age_s`: a contact ban never uses a partner fix older than this (both fixes'
      times on the common time base of the devices' clocks, see `Engine.on_fix`).
    - `partner_unknown_hold_s`: a contact ban whose partner position has been unknown this long
      no longer holds the state it had (an open proximity is cleared, basis `partner`): the
      next fresh pair starts from outside, so an offender near the victim again is raised anew.
    - `partner_history_s`, `partner_history_fixes`: how far back (seconds, and fixes per
      device) the engine keeps the fixes of the devices under a contact ban, to pair an
      offender's buffered fixes with the victim's fixes of the same time (and the reverse).
    - `max_future_s`: fixes dated further ahead of `now` are ignored for state.
    - `max_ahead_s`: a fix dated further ahead of `now` (up to `max_future_s`: a clock running
      ahead) is evaluated as dated `now + max_ahead_s`, so it cannot make every real fix
      until its time look older than the device's last one (they would change no state).
    - `max_area_km2`, `max_radius_m`, `max_pre_alert_m`: validation limits.
    """

    crs: str = "EPSG:28992"
    timezone: str = "Europe/Amsterdam"
    enter_confirmations: int = 2
    enter_dwell_s: float | None = None
    immediate_depth_m: float | None = 100.0
    repeat_confirmations: int | None = 3
    repeat_window_s: float = 600.0
    exit_confirmations: int = 1
    exit_margin_m: float = 25.0
    default_accuracy_m: float = 30.0
    max_possible_accuracy_m: float = 250.0
    crossing_min_depth_m: float = 15.0
    segment_max_gap_s: float = 900.0
    partner_max_age_s: float = 120.0
    partner_unknown_hold_s: float = 1800.0
    partner_history_s: float = 3600.0
    partner_history_fixes: int = 360
    max_future_s: float = 300.0
    max_ahead_s: float = 10.0
    max_area_km2: float = 2_000.0
    max_radius_m: float = 50_000.0
    max_pre_alert_m: float = 10_000.0

    def __post_init__(self) -> None:
        if self.enter_confirmations < 1 or self.exit_confirmations < 1:
            raise ConfigError(
                "enter_confirmations and exit_confirmations must be at least 1"
            )
        if self.repeat_confirmations is not None and self.repeat_confirmations < 2:
            raise ConfigError("repeat_confirmations must be at least 2 (or None: off)")
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, float | int)
                and not isinstance(value, bool)
                and value < 0
            ):
                raise ConfigError(f"{f.name} must not be negative")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

"""How far a device's clock runs behind: the correction a contact ban's pairing takes.

A contact ban compares the offender's fix with the victim's fix of the same moment, and each
device dates its fixes by its own clock. The geofence engine pairs them on a common time base,
each fix's time plus its device's correction (`geofences.engine.common_time`); without it a
victim whose phone runs 150 s behind had her proximity alert about 150 s late, and one whose
clock ran behind by more than the engine's kept history none at all.

The correction comes from the device's latest clock reading, which the staleness step keeps
(`backend.pipeline.steps.clock_reading`: how far the device time of a message it sent live ran
behind its arrival). `clock_correction` decides it, a pure function:

- no reading, or one older than `clock_correction_max_age_s` (600 s): 0. A device that has
  not shown its clock lately may have set it meanwhile (a phone back in coverage takes the
  network's time); its fixes are taken at their word until its next live message. The default
  is longer than `geofence.partner_max_age_s` (a victim's fix young enough to be paired has a
  reading at least as young: a live fix is one) and than a report interval of a few minutes,
  so a device reporting live keeps its correction between its messages.
- a clock running behind by at most `clock_correction_min_s` (15 s), or ahead: 0. A right
  clock shows a few seconds behind on every message (the time it took to arrive): that is no
  wrong clock, and taking it for one would date fixes later than they were taken. A clock
  running ahead needs none: a fix dated more than `max_fix_ahead_s` after its arrival is
  evaluated as dated then (docs/protocol.md, "Locations"), so it never looks older than it is.
- otherwise how far it ran behind.

`corrections` reads the readings of a message's device and its contact-ban partners through
the worker's view of the state store: the batch's prefetch already holds them (the partners
are prefetched with the batch), and a reading on this very message was written to the view by
the staleness step before, so no fix costs a round trip to Redis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from backend.settings import ProtocolSettings
from backend.state.store import ClockReading, StateStore


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    """When a clock reading gives a correction (`ProtocolSettings.clock_correction_*`)."""

    max_age_s: float = 600.0
    min_s: float = 15.0

    @staticmethod
    def from_settings(settings: ProtocolSettings) -> ClockPolicy:
        return ClockPolicy(settings.clock_correction_max_age_s, settings.clock_correction_min_s)


def clock_correction(reading: ClockReading | None, now: float, policy: ClockPolicy) -> float:
    """Seconds to add to the device's fix times to put them on the common time base (see the
    module docstring): 0 without a recent reading of a clock clearly behind. An unreadable
    reading (not finite) gives 0 too."""
    if reading is None or not (math.isfinite(reading.received_at)
                               and math.isfinite(reading.behind)):
        return 0.0
    if now - reading.received_at > policy.max_age_s or reading.behind <= policy.min_s:
        return 0.0
    return reading.behind


def corrections(state: StateStore, device_ids: Iterable[str], now: float,
                policy: ClockPolicy) -> dict[str, float]:
    """The corrections of these devices that are not 0, as the engine takes them."""
    found: dict[str, float] = {}
    for device_id in device_ids:
        if behind := clock_correction(state.get_clock(device_id), now, policy):
            found[device_id] = behind
    return found

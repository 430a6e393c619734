from __future__ import annotations

import logging

from device_protocol import Topics

from backend.devices.directory import DeviceLookup
from backend.pipeline.context import Context, RawMessage
from backend.pipeline.steps import (
    Decode,
    DeviceAlarms,
    DeviceHealth,
    ParseTopic,
    ResolveDevice,
    Staleness,
    Step,
)
from backend.settings import ProtocolSettings
from backend.state.store import StateStore

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    def run(self, raw: RawMessage) -> Context:
        ctx = Context(raw)
        for step in self.steps:
            step(ctx)
            if ctx.done:
                break
        return ctx

    def refresh(self) -> None:
        """Once per batch, before anything else of it: the steps that keep something loaded
        (with a `refresh` method: the zone step's measures) bring it up to date, so that every
        message of the batch sees the same."""
        for step in self.steps:
            refresh = getattr(step, "refresh", None)
            if refresh is not None:
                refresh()

    def related_devices(self, device_ids: list[str]) -> set[str]:
        """Other devices whose state the steps will read for these devices' messages (a step
        says so with a `related_devices` method), so the worker can prefetch them."""
        related: set[str] = set()
        for step in self.steps:
            ask = getattr(step, "related_devices", None)
            if ask is not None:
                related |= ask(device_ids)
        return related

    def begin_batch(self, device_ids: list[str], again: bool = False) -> None:
        """Tell the steps that keep state of their own (with a `begin_batch` method) that a
        batch of these devices' messages starts; `again` when it is handled again after a
        failure."""
        for step in self.steps:
            begin = getattr(step, "begin_batch", None)
            if begin is not None:
                begin(device_ids, again)


def build_pipeline(
    settings: ProtocolSettings,
    directory: DeviceLookup,
    state: StateStore,
    extra_steps: list[Step] | None = None,
) -> Pipeline:
    """The ordered steps: decode, dedupe by design (database constraint), staleness, device
    alarms, zone and proximity events (`extra_steps`, the geofence engine), device health."""
    return Pipeline(
        [
            ParseTopic(Topics(settings.topic_root)),
            ResolveDevice(directory),
            Decode(settings),
            Staleness(settings, state),
            DeviceAlarms(state),
            *(extra_steps or []),
            DeviceHealth(state),
        ]
    )

"""Helpers for the escalation and supervision tests: a console bus that records events, and a
panic pressed on the stack."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from backend.alerts.models import Alert
from device_protocol import Alarm, codec
from tests.support.mqtt import publish

ROTTERDAM_CS = (51.9244, 4.4690)


class RecordingBus:
    """An `EventBus` that keeps what was published (for asserting console events)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def subscribe(self) -> asyncio.Queue[bytes]:
        raise NotImplementedError

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        pass

    def subscriber_count(self) -> int:
        return 0

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]


def raise_panic(stack, device_id: str, exercise: bool = False) -> Alert:
    """Register a victim device (of an exercise case with `exercise`), let it press panic (at
    Rotterdam Centraal) and return the alert once the worker's follow-up has committed."""
    stack.register(device_id, exercise=exercise)
    police = stack.collector(stack.topics.police_filter())
    device = stack.device(device_id)
    publish(
        device,
        stack.topics.alarm(device_id),
        codec.encode(
            Alarm(
                id="p-1",
                kind="panic",
                tst=time.time(),
                lat=ROTTERDAM_CS[0],
                lon=ROTTERDAM_CS[1],
            )
        ),
    )
    police.wait_for(1)
    police.close()
    device.disconnect()
    # The police feed is out before the worker's follow-up (case log, commands) commits; wait
    # for that too, so the loop does not find the alert row still locked by it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with stack.runtime.sessions() as s:
            alert = s.scalars(select(Alert).where(Alert.device_id == device_id)).one()
        if alert.followed_up_at is not None:
            return alert
        time.sleep(0.02)
    raise AssertionError("the worker did not finish the alert's follow-up")

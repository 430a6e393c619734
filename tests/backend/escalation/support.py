"""Helpers for the escalation and supervision tests: a console bus that records events."""

from __future__ import annotations

import asyncio
from typing import Any


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

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

"""A change counter (`backend.cases.snapshots.ChangeCounter`) that tests move by hand and can
break like an unreachable Redis."""

from __future__ import annotations

import redis


class FakeCounter:
    def __init__(self) -> None:
        self.value = 0
        self.broken = False

    def current(self) -> int:
        if self.broken:
            raise redis.ConnectionError("down")
        return self.value

    def bump(self) -> None:
        if self.broken:
            raise redis.ConnectionError("down")
        self.value += 1

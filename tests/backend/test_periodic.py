"""A background loop tells a watchdog when it is stuck in a pass or its thread ended, and not
while it waits between passes or after it was stopped."""

from __future__ import annotations

import threading

import pytest

from backend.periodic import Periodic
from tests.support.waiting import wait_until


class Blocking(Periodic):
    name = "blocking"
    interval_s = 0.05

    def __init__(self) -> None:
        self.release = threading.Event()
        self.blocked = threading.Event()
        self.passes = 0

    def run_once(self) -> None:
        self.passes += 1
        if self.passes == 3:
            self.blocked.set()
            self.release.wait(30)
        if self.passes == 5:
            raise SystemExit  # what no `except Exception` stops: the thread ends


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_stuck_pass_and_an_ended_thread_are_problems_and_nothing_else_is() -> None:
    loop = Blocking()
    assert loop.problems(stuck_after_s=0.3) == []  # not started
    loop.start()
    wait_until(lambda: loop.passes >= 2)
    assert loop.problems(stuck_after_s=0.3) == []

    loop.blocked.wait(10)
    found = wait_until(lambda: loop.problems(stuck_after_s=0.3), timeout=10)
    assert found[0].startswith("loop blocking showed no progress for")
    loop.release.set()
    assert wait_until(lambda: loop.problems(stuck_after_s=0.3) == ["loop blocking ended"])


def test_a_stopped_loop_is_no_problem() -> None:
    loop = Blocking()
    loop.start()
    loop.stop()
    assert loop.problems(stuck_after_s=0.3) == []

"""Process settings: niceness is absolute (not added to the inherited one)."""

from __future__ import annotations

import os
import sys
import threading

from backend import process
from backend.settings import ProcessSettings


def _in_thread(work):
    """Run in a thread of its own: niceness is per thread on Linux, so the test process's other
    threads keep theirs."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_niceness_is_set_not_added() -> None:
    def work() -> tuple[int, int]:
        base = os.getpriority(os.PRIO_PROCESS, 0)
        first = process.set_niceness(min(base + 3, 19))
        # Asked again for the same niceness: a relative os.nice would have gone to base + 6.
        second = process.set_niceness(min(base + 3, 19))
        return first, second

    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert _in_thread(work) == (min(base + 3, 19), min(base + 3, 19))


def test_unset_niceness_keeps_the_inherited_one() -> None:
    before = sys.getswitchinterval()

    def work() -> int:
        os.setpriority(os.PRIO_PROCESS, 0, min(os.getpriority(os.PRIO_PROCESS, 0) + 2, 19))
        inherited = os.getpriority(os.PRIO_PROCESS, 0)
        process.apply(ProcessSettings(switch_interval_s=before))
        return os.getpriority(os.PRIO_PROCESS, 0) - inherited

    assert _in_thread(work) == 0
    assert ProcessSettings().nice is None


def test_raising_priority_without_the_privilege_warns_and_keeps_running(caplog) -> None:
    if os.geteuid() == 0:
        # root may raise priority: a thread at 19 is asked for 18 and gets it.
        assert _in_thread(lambda: (process.set_niceness(19), process.set_niceness(18))) == (19, 18)
        return

    def work() -> int:
        process.set_niceness(19)
        return process.set_niceness(10)

    assert _in_thread(work) == 19
    assert "needs CAP_SYS_NICE" in caplog.text


def test_freeze_loaded_collects_garbage_first_then_freezes_what_is_alive():
    import gc
    import weakref

    class Node:
        pass

    alive = Node()
    cycle = Node()
    cycle.me = cycle  # garbage only the cyclic collector frees
    gone = weakref.ref(cycle)
    del cycle
    try:
        process.freeze_loaded()

        assert gone() is None  # collected, not frozen
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # frozen: out of the scans
    finally:
        gc.unfreeze()

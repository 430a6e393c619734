"""Process settings: niceness is absolute (not added to the inherited one)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

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


# A child that sets its niceness as a Schildwacht process does, then tells its own and its
# session group's niceness.
CHILD = """
from backend import process
import os
print(process.set_niceness({nice}), process.group_niceness())
"""
needs_autogroup = pytest.mark.skipif(
    not process.AUTOGROUP.exists(), reason="this kernel has no autogroups")


def _child(nice: int, **popen) -> tuple[int, int | None]:
    out = subprocess.run([sys.executable, "-c", CHILD.format(nice=nice)], capture_output=True,
                         text=True, timeout=30, check=True, **popen).stdout.split()
    return int(out[0]), None if out[1] == "None" else int(out[1])


@needs_autogroup
def test_a_session_leader_gives_its_session_group_its_niceness() -> None:
    # As a service is started (systemd gives each a session of its own): without the group's
    # niceness it would share the CPU with every other session as an equal, whatever its own.
    nice = min(max(os.getpriority(os.PRIO_PROCESS, 0), 7), 19)  # a new session's group is at 0

    assert _child(nice, start_new_session=True) == (nice, nice)


@needs_autogroup
def test_a_process_in_its_starters_session_leaves_that_group_alone() -> None:
    # None when the test runs in the kernel's default group (a session as old as the machine's
    # first process, as under some CI runners): the child must not give it one either.
    before = process.group_niceness()
    own = os.getpriority(os.PRIO_PROCESS, 0)
    nice = min((own if before is None else max(own, before)) + 3, 19)

    assert _child(nice) == (nice, before)  # the session's other processes keep their share
    assert process.group_niceness() == before


def test_group_niceness_without_autogroups_is_none(tmp_path: Path) -> None:
    missing = tmp_path / "autogroup"
    assert process.group_niceness(missing) is None
    assert process.set_group_niceness(5, missing) is None
    assert not missing.exists()


@needs_autogroup
def test_raising_the_groups_priority_without_the_privilege_warns(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may raise priority")
    code = ("from backend import process\n"
            "import time\n"
            "process.set_group_niceness(5)\n"
            "time.sleep(0.2)\n"  # unprivileged, one change per 0.1 s
            "print(process.set_group_niceness(-5))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True, start_new_session=True)
    assert done.stdout.split() == ["5"]
    assert "needs CAP_SYS_NICE" in done.stderr


class BusyAutogroup:
    """An autogroup file whose kernel refuses the first `busy` changes (EAGAIN), as it does
    to an unprivileged writer more often than once per 0.1 s."""

    def __init__(self, busy: int) -> None:
        self.busy, self.writes, self.nice = busy, 0, 0

    def exists(self) -> bool:
        return True

    def write_text(self, text: str) -> None:
        self.writes += 1
        if self.writes <= self.busy:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        self.nice = int(text)

    def read_text(self) -> str:
        return f"/autogroup-7 nice {self.nice}"


def test_a_busy_kernel_is_asked_again_a_bounded_number_of_times(caplog) -> None:
    busy_twice = BusyAutogroup(busy=2)
    assert process.set_group_niceness(5, busy_twice) == 5  # type: ignore[arg-type]
    assert busy_twice.writes == 3

    always_busy = BusyAutogroup(busy=10**6)
    assert process.set_group_niceness(5, always_busy) == 0  # type: ignore[arg-type]
    assert always_busy.writes == process.GROUP_TRIES
    assert "kernel was busy" in caplog.text


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

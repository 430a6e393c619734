"""Between sessions, a niceness counts only with its session's group (`backend.process`)."""

from __future__ import annotations

import os

import pytest

from backend.process import AUTOGROUP
from loadtests import session_share


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="this kernel has no autogroups")
def test_set_niceness_orders_processes_of_different_sessions_as_of_one() -> None:
    if os.getpriority(os.PRIO_PROCESS, 0) > session_share.URGENT:
        pytest.skip("the test runs above niceness 0")
    one, apart, grouped = (session_share.measure(way, seconds=0.6) for way in session_share.WAYS)

    # On one CPU, by weight: 1024 against 15 within a group, 1024 against 1024 between groups.
    assert one.ratio > 5
    assert grouped.ratio > 5
    if open("/proc/sys/kernel/sched_autogroup_enabled").read().strip() == "1":
        assert apart.ratio < 3  # the process's niceness alone: about even

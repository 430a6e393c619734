from __future__ import annotations

from loadtests.locust_tracker import AlarmTracker


def test_ack_matches_once_and_overdue_lists_the_rest():
    t = AlarmTracker()
    t.sent("a", at=100.0)
    t.sent("b", at=101.0)
    assert t.acked("a") == 100.0
    assert t.acked("a") is None  # a repeated ack is not a second observation
    assert t.acked("unknown") is None
    assert t.overdue(5.0, now=110.0) == ["b"]
    assert t.overdue(60.0, now=110.0) == []
    assert t.counts == (2, 1)


def test_an_alarm_waits_until_its_ack():
    t = AlarmTracker()
    assert not t.waiting("a")  # never sent
    t.sent("a", at=1.0)
    assert t.waiting("a")
    t.acked("a")
    assert not t.waiting("a")

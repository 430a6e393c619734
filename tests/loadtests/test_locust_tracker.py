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


def test_an_alarm_whose_publish_never_ended_is_not_due():
    tracker = AlarmTracker()
    tracker.sent("a-1", at=0.0)
    tracker.sent("a-2", at=0.0)
    tracker.unsent("a-2")  # the run stopped the user during its publish
    assert tracker.overdue(0.0, now=100.0) == ["a-1"]
    assert not tracker.waiting("a-2") and tracker.acked("a-2") is None
    assert tracker.counts == (1, 0)

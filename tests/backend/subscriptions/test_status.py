"""The alert's aggregate police delivery state (pure)."""

from __future__ import annotations

from backend.subscriptions.status import aggregate, replayed_state

URGENT = ("P1", "P2")


def test_no_deliveries_is_none():
    assert aggregate([], "P1", URGENT) is None


def test_pending_until_every_subscription_got_it():
    assert aggregate([("a", 1, 0, "delivered"), ("b", 1, 0, "retrying")], "P1",
                     URGENT) == "pending"
    assert aggregate([("a", 1, 0, "delivered"), ("b", 1, 0, "delivered")], "P1",
                     URGENT) == "delivered"


def test_failure_of_an_urgent_alert_is_unreachable_else_failed():
    states = [("a", 1, 0, "delivered"), ("b", 1, 0, "unreachable")]
    assert aggregate(states, "P1", URGENT) == "unreachable"
    assert aggregate([("b", 1, 0, "rejected")], "P2", URGENT) == "unreachable"
    assert aggregate(states, "P3", URGENT) == "failed"


def test_a_failed_partner_is_recorded_but_is_not_the_police_not_reached():
    """A subscription that names no police unit (an archive, a partner) is no control room:
    its failure is `failed`, the police's (here `b`) still `unreachable`."""
    archive_failed = [("archive", 1, 0, "unreachable"), ("b", 1, 0, "delivered")]
    assert aggregate(archive_failed, "P1", URGENT, {"archive"}) == "failed"
    assert aggregate(archive_failed, "P1", URGENT) == "unreachable"
    both_failed = [("archive", 1, 0, "unreachable"), ("b", 1, 0, "rejected")]
    assert aggregate(both_failed, "P1", URGENT, {"archive"}) == "unreachable"
    assert aggregate([("archive", 1, 0, "delivered"), ("b", 1, 0, "pending")], "P1", URGENT,
                     {"archive"}) == "pending"


def test_a_later_message_that_got_through_supersedes_a_failed_one():
    assert aggregate([("a", 1, 0, "unreachable"), ("a", 2, 0, "delivered")], "P1",
                     URGENT) == "delivered"
    assert aggregate([("a", 1, 0, "delivered"), ("a", 2, 0, "unreachable")], "P1",
                     URGENT) == "unreachable"


def test_an_escalation_comes_after_the_message_it_escalates():
    """An escalation has the sequence of the message it escalates: its step orders it after
    that message, and a later transition after both."""
    raised, escalated = ("a", 1, 0, "delivered"), ("a", 1, 3, "unreachable")
    assert aggregate([escalated, raised], "P1", URGENT) == "unreachable"
    assert aggregate([raised, escalated], "P1", URGENT) == "unreachable"
    assert aggregate([escalated, ("a", 1, 4, "delivered")], "P1", URGENT) == "delivered"
    assert aggregate([("a", 2, 0, "delivered"), escalated], "P1", URGENT) == "delivered"


def test_a_failure_stands_while_a_later_message_is_still_on_its_way():
    """Police not reached stays until a later message to them is delivered: a transition's
    message (an acknowledgement) or an escalation's still pending does not clear it."""
    failed = ("a", 1, 0, "unreachable")
    assert aggregate([failed, ("a", 2, 0, "pending")], "P1", URGENT) == "unreachable"
    assert aggregate([("a", 1, 3, "retrying"), failed], "P1", URGENT) == "unreachable"
    assert aggregate([("a", 1, 0, "rejected"), ("a", 2, 0, "pending")], "P3",
                     URGENT) == "failed"
    assert aggregate([failed, ("a", 2, 0, "delivered"), ("a", 3, 0, "pending")], "P1",
                     URGENT) == "pending"
    assert aggregate([failed, ("a", 2, 0, "pending"), ("a", 2, 1, "delivered")], "P1",
                     URGENT) == "delivered"


def test_a_failure_of_one_subscription_is_not_cleared_by_another():
    assert aggregate([("a", 1, 0, "unreachable"), ("a", 2, 0, "pending"),
                      ("b", 2, 0, "delivered")], "P1", URGENT) == "unreachable"


def test_a_replay_of_a_failure_counts_as_that_failure_until_it_ends():
    assert replayed_state("pending", "unreachable") == "unreachable"
    assert replayed_state("retrying", "rejected") == "rejected"
    assert replayed_state("delivered", "unreachable") == "delivered"
    assert replayed_state("unreachable", "rejected") == "unreachable"
    assert replayed_state("pending", None) == "pending"

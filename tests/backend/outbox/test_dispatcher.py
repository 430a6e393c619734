"""The dispatcher keeps the broker's acknowledgements until the UPDATE that marks their rows sent
has committed: a database blip while they come in loses none, so a police feed message the
broker took is not ended unconfirmed at its deadline ("police not reached") nor a device ack
expired. While the database stays away it keeps a bounded number, the newest; the rows of those
let go stay pending and are published again. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from backend.outbox.dispatcher import OutboxDispatcher, keep_newest
from tests.backend.outbox.test_unconfirmed import (
    FEED,
    T0,
    Clock,
    Published,
    _alert,
    _outbox,
    _police_delivery,
    _status,
    _worker,
)


class Flaky:
    """A session factory whose `begin()` fails (the database away) on the calls numbered in
    `failing` (1 is the first)."""

    def __init__(self, sessions, failing: set[int]) -> None:
        self._sessions = sessions
        self._failing = failing
        self.calls = 0

    def begin(self):
        self.calls += 1
        if self.calls in self._failing:
            raise OperationalError("UPDATE outbox", {}, Exception("connection reset"))
        return self._sessions.begin()

    def __call__(self, *args, **kwargs):
        return self._sessions(*args, **kwargs)


def test_an_acknowledgement_stays_until_its_update_commits(sessions):
    alert = _alert(sessions, "P1")
    feed = _outbox(sessions, alert, FEED, 0)
    dispatcher = OutboxDispatcher(Flaky(sessions, failing={1}))
    dispatcher.on_delivered(feed)  # the broker took the police feed message

    with pytest.raises(OperationalError):
        dispatcher.flush_delivered()
    assert _status(sessions, feed) == "pending"
    assert dispatcher.flush_delivered() == 1
    assert dispatcher.flush_delivered() == 0

    clock = Clock()
    clock.now = T0 + timedelta(seconds=61)  # past the deadline
    assert _worker(sessions, clock).sweep_feeds() == 0
    assert _status(sessions, feed) == "sent"
    assert _police_delivery(sessions, alert) is None


def test_a_flush_that_fails_midway_keeps_what_it_has_not_marked(sessions):
    alert = _alert(sessions, "P1")
    rows = [_outbox(sessions, alert, FEED, 0) for _ in range(3)]
    dispatcher = OutboxDispatcher(Flaky(sessions, failing={2}), flush_chunk=2)
    for row in rows:
        dispatcher.on_delivered(row)

    with pytest.raises(OperationalError):
        dispatcher.flush_delivered()
    assert [_status(sessions, r) for r in rows] == ["sent", "sent", "pending"]
    assert dispatcher.flush_delivered() == 1
    assert _status(sessions, rows[2]) == "sent"


def test_a_database_away_long_keeps_the_newest_and_the_rest_are_published_again(
        sessions, caplog):
    alert = _alert(sessions, "P1")
    first, second, third = (_outbox(sessions, alert, FEED, 0) for _ in range(3))
    dispatcher = OutboxDispatcher(Flaky(sessions, failing={1, 2}), resend_after_s=1.0,
                                  max_unflushed=2)
    for row in (first, second):
        dispatcher.on_delivered(row)
    with pytest.raises(OperationalError):
        dispatcher.flush_delivered()
    dispatcher.on_delivered(third)
    with caplog.at_level(logging.ERROR, logger="backend.outbox.dispatcher"), \
            pytest.raises(OperationalError):
        dispatcher.flush_delivered()
    assert "1 broker acknowledgements let go" in caplog.text

    assert dispatcher.flush_delivered() == 2  # the database is back
    assert [_status(sessions, r) for r in (first, second, third)] == ["pending", "sent", "sent"]
    published = Published()
    dispatcher.attach(published)
    dispatcher.sweep(now=T0 + timedelta(seconds=2))
    assert published.keys == [first]  # its broker acknowledgement comes again


@pytest.mark.parametrize("ids, limit, kept, dropped", [
    ([], 2, [], 0),
    ([1, 2], 2, [1, 2], 0),
    ([1, 2, 3, 4], 2, [3, 4], 2),
])
def test_keep_newest(ids, limit, kept, dropped):
    assert keep_newest(ids, limit) == (kept, dropped)

"""What the delivery hook queues for after the commit, under savepoints (`wiring`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.subscriptions.hook import JOBS_KEY, WAKE_KEY
from backend.subscriptions.wiring import take_back_on_rollback
from tests.support.db import sqlite_sessions


@pytest.fixture
def sessions(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)


def _queue(session, job: str, wake: bool = False) -> None:
    session.info.setdefault(JOBS_KEY, []).append(job)
    if wake:
        session.info[WAKE_KEY] = True


def test_a_savepoint_rolled_back_takes_back_only_what_was_queued_inside_it(sessions) -> None:
    take_back_on_rollback(sessions)
    with sessions() as session:
        session.begin()
        _queue(session, "first alert")
        with session.begin_nested():
            _queue(session, "second alert")  # released: it stays
        try:
            with session.begin_nested():
                _queue(session, "broken alert", wake=True)
                raise RuntimeError("the escalation of one alert failed")
        except RuntimeError:
            pass
        _queue(session, "fourth alert")
        assert session.info[JOBS_KEY] == ["first alert", "second alert", "fourth alert"]
        assert session.info[WAKE_KEY] is False  # woken only inside the savepoint taken back
        session.rollback()
        assert JOBS_KEY not in session.info and WAKE_KEY not in session.info


def test_nested_savepoints_take_back_their_own(sessions) -> None:
    take_back_on_rollback(sessions)
    with sessions() as session:
        session.begin()
        _queue(session, "a", wake=True)
        outer = session.begin_nested()
        _queue(session, "b")
        inner = session.begin_nested()
        _queue(session, "c")
        inner.rollback()
        assert session.info[JOBS_KEY] == ["a", "b"]
        outer.rollback()
        assert session.info[JOBS_KEY] == ["a"] and session.info[WAKE_KEY] is True
        session.commit()

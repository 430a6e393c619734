"""The audit writer behind the console stream: every entry written, in order, nothing dropped."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from backend.audit import writer as writer_module
from backend.audit.log import LocationRead
from backend.audit.models import AuditEntry
from backend.audit.writer import AuditWriter
from backend.auth.tokens import Principal
from tests.support.db import sqlite_sessions
from tests.support.waiting import wait_until

WHO = Principal("token:desk", "dispatcher", {"regions": ["VR17"]}, "token#7")


@pytest.fixture
def sessions(tmp_path):
    yield from sqlite_sessions(tmp_path)


def _reads(n: int) -> list[LocationRead]:
    return [LocationRead("alert", f"a-{i}", uuid.uuid4(), f"vic-{i}") for i in range(n)]


def _written(sessions) -> list[tuple[str, str, str]]:
    with sessions() as s:
        return [(e.resource_id, e.channel, e.actor) for e in
                s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_entries_are_written_in_order(sessions):
    writer = AuditWriter(sessions)
    reads = _reads(5)
    for read in reads:
        assert writer.submit(WHO, [read], channel="stream")
    writer.stop()
    assert _written(sessions) == [(f"a-{i}", "stream", "token:desk") for i in range(5)]


def test_a_full_queue_hands_the_entries_back(sessions):
    gate = threading.Event()
    writer = AuditWriter(_Held(sessions, gate), max_pending=1)
    assert writer.submit(WHO, _reads(1), channel="stream")  # taken by the thread, held
    wait_until(lambda: writer.pending == 0, timeout=5)
    assert writer.submit(WHO, _reads(1), channel="stream")  # queued
    assert not writer.submit(WHO, _reads(1), channel="stream")  # full: the caller writes it
    gate.set()
    writer.stop()
    assert len(_written(sessions)) == 2
    assert not writer.submit(WHO, _reads(1), channel="stream")  # stopped


def test_a_failed_write_is_retried(sessions, monkeypatch):
    """The batch fails, then its first entry alone; the second is written, the first on the
    retry."""
    monkeypatch.setattr(writer_module, "RETRY_DELAYS_S", (0.01, 0.01))
    flaky = _Failing(sessions, failures=2)
    writer = AuditWriter(flaky)
    assert writer.submit(WHO, _reads(2), channel="stream")
    writer.stop()
    assert flaky.calls == 4
    assert sorted(_written(sessions)) == [("a-0", "stream", "token:desk"),
                                          ("a-1", "stream", "token:desk")]


def test_entries_that_cannot_be_written_are_logged_by_id(sessions, monkeypatch, caplog):
    monkeypatch.setattr(writer_module, "RETRY_DELAYS_S", (0.01,))
    writer = AuditWriter(_Failing(sessions, failures=10))
    assert writer.submit(WHO, _reads(2), channel="stream")
    writer.stop()
    assert _written(sessions) == []
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(messages) == 2
    for i, message in enumerate(messages):
        assert "actor=token#7" in message and f"alert=a-{i}" in message
        assert "desk" not in message  # the token by id, not by its name
        assert "vic-" not in message  # ids of alerts only


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_entry_the_database_refuses_costs_only_itself(stack, monkeypatch, caplog):
    """On PostgreSQL: an actor longer than its column (a token named before names were
    bounded) in one batch with the entries of others; theirs are written, it is logged."""
    monkeypatch.setattr(writer_module, "RETRY_DELAYS_S", (0.01,))
    sessions = stack.runtime.sessions
    gate = threading.Event()
    writer = AuditWriter(_Held(sessions, gate))
    assert writer.submit(WHO, _reads(1), channel="stream")  # taken by the thread, held
    wait_until(lambda: writer.pending == 0, timeout=5)
    long_named = Principal("token:" + "n" * 128, "dispatcher", {"regions": ["VR17"]})
    other = Principal("user:desk", "dispatcher", {"regions": ["VR17"]})
    for i, who in enumerate((WHO, long_named, other)):  # queued: the next batch, together
        assert writer.submit(who, [LocationRead("alert", f"b-{i}", None, "vic-b")],
                             channel="stream")
    gate.set()
    writer.stop()
    assert sorted((resource_id, actor) for resource_id, _, actor in _written(sessions)) == [
        ("a-0", "token:desk"), ("b-0", "token:desk"), ("b-2", "user:desk")]
    [message] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "alert=b-1" in message and "vic-" not in message


class _Held:
    """A session factory whose transactions wait for `gate` before they begin."""

    def __init__(self, sessions, gate: threading.Event) -> None:
        self._sessions, self._gate = sessions, gate

    def begin(self):
        self._gate.wait(5)
        return self._sessions.begin()


class _Failing:
    """A session factory whose first `failures` transactions fail to begin."""

    def __init__(self, sessions, failures: int) -> None:
        self._sessions, self.failures, self.calls = sessions, failures, 0

    def begin(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("BEGIN", {}, Exception("database away"))
        return self._sessions.begin()

"""The escalation loop on SQLite (the demo): a step is carried out in the pass it falls due,
also when another connection writes while the pass is at work. A transaction that has read
cannot take SQLite's write lock once another connection committed after its read (it fails at
once, without waiting), so the loop holds the lock before it reads the alerts it escalates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from backend.db.engine import make_engine
from backend.escalation.loop import EscalationLoop
from backend.settings import DatabaseSettings
from tests.backend.escalation.support import RecordingBus, raise_panic


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_a_write_by_another_connection_does_not_put_a_step_off(stack):
    alert = raise_panic(stack, "vic-sqlite-esc")
    other = make_engine(DatabaseSettings(url=stack.settings.database.url,
                                         connect_timeout_s=0.05))
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE elsewhere (n integer)"))
    others_wrote: list[bool] = []

    def meanwhile(conn, cursor, statement, *args) -> None:
        """Just before the pass's first write: another connection writes, or is kept out."""
        if others_wrote or not statement.startswith("INSERT INTO alert_events"):
            return
        try:
            with other.begin() as elsewhere:
                elsewhere.execute(text("INSERT INTO elsewhere VALUES (1)"))
            others_wrote.append(True)
        except OperationalError:  # the pass holds the write lock
            others_wrote.append(False)

    engine = stack.runtime.engine
    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        loop = EscalationLoop(stack.runtime, bus=RecordingBus())
        carried_out = loop.run_once(alert.raised_at + timedelta(seconds=30))
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
        other.dispose()
    assert others_wrote == [False]
    assert carried_out == 1

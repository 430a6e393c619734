"""The custody loop on SQLite (the demo): a release whose date comes while a desk changes the
same case is carried out once. The loop reads the due cases before it writes; it holds the
database's write lock before that read, as it claims the rows on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from backend.caselog import service as caselog
from backend.cases import service as cases
from backend.cases.custody_loop import CustodyLoop
from backend.cases.flows import CaseFlow
from backend.db.engine import make_engine, make_session_factory
from backend.settings import DatabaseSettings
from tests.backend.cases.support import case_with_devices


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_a_release_carried_out_meanwhile_is_not_carried_out_again(stack):
    case_id = uuid.UUID(case_with_devices(stack))
    released = datetime.now(UTC) + timedelta(days=3)
    r = stack.api().patch(f"/api/v1/cases/{case_id}", json={
        "custody_status": "released", "released_at": released.isoformat()})
    assert r.status_code == 200, r.text
    other = make_engine(DatabaseSettings(url=stack.settings.database.url,
                                         connect_timeout_s=0.05))
    desk = CaseFlow(stack.runtime.topics, stack.runtime.flow.policy)
    tried: list[bool] = []

    def meanwhile(conn, cursor, statement, *args) -> None:
        """Just before the pass's first write, the desk's change reconciles the same case."""
        if tried or not statement.startswith(("INSERT", "UPDATE")):
            return
        try:
            with make_session_factory(other).begin() as s:
                desk.reconcile_custody(s, cases.get(s, case_id, for_update=True),
                                       "user:desk", released)
            tried.append(True)
        except OperationalError:  # the pass holds the write lock
            tried.append(False)

    engine = stack.runtime.engine
    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        CustodyLoop(stack.runtime).run_once(released)
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
        other.dispose()
    with stack.runtime.sessions() as s:
        kinds = [e.kind for e in caselog.entries(s, case_id)]
    assert kinds.count("custody_release") == 1
    assert tried == [False]

"""A case changed by two parties at the same moment on SQLite (the demo): what a change reads
of the case is what it writes over. A case update and a deletion take the database's write lock
before they read the case (`backend.db.engine.hold_write_lock`), as they lock its row on
PostgreSQL (`tests/backend/cases/test_delete_race.py`)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.api.app import create_app
from backend.caselog import service as caselog
from backend.caselog.models import CaseLogEntry
from backend.cases.errors import CaseInUse
from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.demo import demo_settings, seed
from backend.runtime import Runtime
from backend.settings import Settings
from tests.backend.cases.test_delete_race import delete_in_thread
from tests.support.db import sqlite_sessions

PATCHES = 8


def test_a_release_sent_twice_at_once_tightens_the_case_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo keeps its database in ./.demo
    settings = demo_settings(Settings())
    upgrade(settings.database.url)
    runtime = Runtime.build(settings)
    try:
        seed(runtime, 1)
        with runtime.sessions.begin() as s:
            case = s.scalars(select(Case)).one()
            case.custody_status, case_id = "in_custody", case.id
        app = create_app(runtime)
        headers = {"Authorization": f"Bearer {settings.api.admin_token.get_secret_value()}"}
        released = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        together = threading.Barrier(PATCHES)

        def release(_: int) -> int:
            client = TestClient(app, headers=headers, raise_server_exceptions=False)
            together.wait()
            return client.patch(f"/api/v1/cases/{case_id}", json={
                "custody_status": "released", "released_at": released}).status_code

        with ThreadPoolExecutor(PATCHES) as pool:
            answers = list(pool.map(release, range(PATCHES)))

        assert answers == [200] * PATCHES
        with runtime.sessions() as s:
            kinds = [e.kind for e in caselog.entries(s, case_id)]
        assert kinds.count("custody_release") == 1 and kinds.count("measure") == 1
    finally:
        runtime.close()


def test_a_note_written_while_the_case_is_deleted_stops_the_deletion(tmp_path):
    for sessions in sqlite_sessions(tmp_path):
        case_id = uuid.uuid4()
        with sessions.begin() as s:
            s.add(Case(id=case_id, reference="DEL-SQLITE", home_vr_code="VR17",
                       custody_status="none", exercise=False, case_director="token:cd"))
        deletion, outcome = delete_in_thread(sessions, case_id)
        with sessions.begin() as desk:  # meanwhile the desk writes a note to the case
            caselog.append(desk, case_id, "note", "user:desk", {"text": "buren bellen"})
            deletion.start()
            deletion.join(0.5)  # the deletion's checks run now, or wait for the desk
        deletion.join(10)
        [result] = outcome
        assert isinstance(result, CaseInUse), f"deletion ended with {result!r}"
        with sessions() as s:
            kinds = s.scalars(select(CaseLogEntry.kind)
                              .where(CaseLogEntry.case_id == case_id)).all()
        assert kinds == ["note"]

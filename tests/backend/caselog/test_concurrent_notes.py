"""Notes added to one case at the same time, on the demo's configuration (SQLite): each one is
stored, in one unbroken chain, and none is answered with an error. An append reads the case's
last entry before it writes the next one; on SQLite it takes the write lock before that read
(`backend.db.engine.hold_write_lock`), so two appends cannot both build on the same entry."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.api.app import create_app
from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.demo import demo_settings, seed
from backend.runtime import Runtime
from backend.settings import Settings

NOTES = 16


def test_notes_sent_at_once_are_all_stored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo keeps its database in ./.demo
    settings = demo_settings(Settings())
    assert settings.database.url.startswith("sqlite")
    upgrade(settings.database.url)
    runtime = Runtime.build(settings)
    try:
        seed(runtime, 1)
        with runtime.sessions() as s:
            case_id = s.scalar(select(Case.id))
        app = create_app(runtime)
        token = settings.api.admin_token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        together = threading.Barrier(NOTES)

        def add(i: int) -> int:
            client = TestClient(app, headers=headers, raise_server_exceptions=False)
            together.wait()
            return client.post(f"/api/v1/cases/{case_id}/log/notes",
                               json={"text": f"note {i}"}).status_code

        with ThreadPoolExecutor(NOTES) as pool:
            answers = list(pool.map(add, range(NOTES)))

        assert answers == [201] * NOTES
        api = TestClient(app, headers=headers)
        log = api.get(f"/api/v1/cases/{case_id}/log").json()
        assert sorted(e["data"]["text"] for e in log) == sorted(
            f"note {i}" for i in range(NOTES))
        assert [e["seq"] for e in log] == list(range(1, NOTES + 1))
        assert api.get(f"/api/v1/cases/{case_id}/log/verify").json()["ok"] is True
    finally:
        runtime.close()

"""`schildwacht cases changed`: after a change made outside the API (by hand, in SQL), every
worker is told at once, through the same change counter the API raises: the cases named, or
everything. A case that does not exist, or no Redis to tell, changes nothing."""

from __future__ import annotations

import uuid

import pytest
import redis

from backend.cases.changes import ChangeReader, RedisChangeCounter
from backend.cases.models import Case
from backend.cli import main
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.services


@pytest.fixture
def world(pg_sessions, pg_url, monkeypatch):
    """A case in the test database, the command's settings, and a reader of the counter."""
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCHILDWACHT_DATABASE__URL", pg_url)
    monkeypatch.setenv("SCHILDWACHT_REDIS__URL", REDIS_URL)
    monkeypatch.setenv("SCHILDWACHT_REDIS__KEY_PREFIX", prefix)
    with pg_sessions.begin() as s:
        case = Case(reference=f"C-{prefix}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        case_id = case.id
    client = redis.Redis.from_url(REDIS_URL)
    counter = RedisChangeCounter.of_prefix(client, prefix)
    counter.bump()  # a counter in use, as in a deployment that has run a while
    reader = ChangeReader(counter)
    reader.read()  # where a worker stands before the command
    yield case_id, reader
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def test_a_case_named_is_read_again_by_every_worker(world, capsys):
    case_id, reader = world
    assert main(["cases", "changed", "--case", str(case_id)]) == 0
    moves = reader.read()
    assert moves.cases == {case_id} and not moves.everything
    assert "1 case(s) changed" in capsys.readouterr().out


def test_without_a_case_every_worker_reads_everything_again(world):
    _, reader = world
    assert main(["cases", "changed"]) == 0
    assert reader.read().everything


def test_a_case_that_does_not_exist_tells_nobody(world, capsys):
    case_id, reader = world
    unknown = uuid.uuid4()
    assert main(["cases", "changed", "--case", str(case_id), "--case", str(unknown)]) == 2
    assert f"no such case: {unknown}" in capsys.readouterr().err
    assert not reader.read().moved


def test_an_id_that_is_no_case_id_is_refused_by_the_command_line(world, capsys):
    _, reader = world
    with pytest.raises(SystemExit) as stop:
        main(["cases", "changed", "--case", "C-2024-17"])
    assert stop.value.code == 2 and "invalid UUID value" in capsys.readouterr().err
    assert not reader.read().moved


def test_without_redis_there_is_nobody_to_tell(monkeypatch, capsys):
    monkeypatch.delenv("SCHILDWACHT_REDIS__URL", raising=False)
    assert main(["cases", "changed"]) == 2
    assert "no Redis configured" in capsys.readouterr().err

"""What the API tells the other processes after a change (`backend.cases.changes`): a change of
a case or of a device names its case, so that every worker reads that case again instead of
every case (1-6 s of a worker's interpreter at 150,000 devices); a change of a webhook
subscription is not a change of cases and tells them nothing."""

from __future__ import annotations

import uuid

import pytest

from backend.cases.changes import NOTHING, ChangeReader, Moves, RedisChangeCounter
from tests.backend.cases.test_views import CASE


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_change_through_the_api_names_its_case(stack) -> None:
    prefix = stack.settings.redis.key_prefix
    assert stack.runtime.redis is not None
    reader = ChangeReader(RedisChangeCounter.of_prefix(stack.runtime.redis, prefix))
    api = stack.api()
    case_id = api.post("/api/v1/cases", json={**CASE, "reference": "NAMES-1"}).json()["id"]
    that_case = Moves(cases=frozenset({uuid.UUID(case_id)}))
    device = api.post("/api/v1/devices", json={"id": "names-v", "case_id": case_id,
                                               "role": "victim"})
    assert device.status_code == 201, device.text
    reader.read()

    r = api.patch(f"/api/v1/cases/{case_id}", json={"risk_level": "medium"})
    assert r.status_code == 200, r.text
    assert reader.read() == that_case
    r = api.patch("/api/v1/devices/names-v", json={"report_interval_s": 30})
    assert r.status_code == 200, r.text
    assert reader.read() == that_case
    r = api.post(f"/api/v1/cases/{case_id}/contacts",
                 json={"organisation": "om", "name": "OM", "phone": "0612345678"})
    assert r.status_code == 201, r.text
    assert reader.read() == that_case

    r = api.post("/api/v1/subscriptions",
                 json={"name": "Meldkamer", "url": "https://politie.example/hooks"})
    assert r.status_code == 201, r.text
    assert reader.read() == NOTHING


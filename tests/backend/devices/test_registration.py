"""Registering a device at the same moment as another request registers the same one, on both
back ends: one is stored, the others get a 409 that names what clashed."""

from __future__ import annotations

import pytest

from backend.api.app import create_app
from tests.backend.conftest import ADMIN_TOKEN
from tests.support.concurrent import together

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services

TIMES = 4


def _register_at_once(stack, body_of) -> list:
    case_id = stack.register("vic-first")
    app = create_app(stack.runtime)
    return together(app, ADMIN_TOKEN, TIMES, lambda c, i: c.post(
        "/api/v1/devices", json={"case_id": str(case_id), "role": "victim", **body_of(i)}))


def test_one_device_id_registered_at_once_is_stored_once(stack):
    answers = _register_at_once(stack, lambda i: {"id": "dev-race"})

    assert sorted(r.status_code for r in answers) == [201] + [409] * (TIMES - 1), \
        [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["detail"] == "device dev-race is already registered"
    assert [d["id"] for d in stack.api().get("/api/v1/devices").json()].count("dev-race") == 1


def test_one_owntracks_pair_registered_at_once_is_stored_once(stack):
    answers = _register_at_once(stack, lambda i: {
        "id": f"dev-pair-{i}", "owntracks_user": "anna", "owntracks_device": "phone"})

    assert sorted(r.status_code for r in answers) == [201] + [409] * (TIMES - 1), \
        [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["detail"] == "the OwnTracks user/device pair is already registered"
    devices = stack.api().get("/api/v1/devices").json()
    assert [d["owntracks_user"] for d in devices].count("anna") == 1

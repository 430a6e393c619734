"""A broker account publishes for every device it names (its id, its OwnTracks user): no
account may be shared between devices of different cases or roles, on both back ends."""

from __future__ import annotations

import uuid

import pytest

from backend.devices.schemas import DeviceCreate
from backend.devices.service import Holder, account_clash, accounts

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services

CASE, OTHER = uuid.uuid4(), uuid.uuid4()


def _new(**fields) -> DeviceCreate:
    return DeviceCreate(**{"id": "dev-new", "case_id": CASE, "role": "victim", **fields})


def test_a_devices_accounts_are_its_id_and_its_owntracks_user():
    assert accounts("vic-1", None) == {"vic-1"}
    assert accounts("vic-1", "anna") == {"vic-1", "anna"}


@pytest.mark.parametrize(("new", "holder", "clash"), [
    # his phone's OwnTracks user is the victim's device id
    (_new(role="offender", owntracks_user="vic-1", owntracks_device="phone"),
     Holder("vic-1", CASE, "victim", None), "vic-1"),
    # a device id that is another case's OwnTracks user
    (_new(id="anna"), Holder("ot-9", OTHER, "victim", "anna"), "anna"),
    # one OwnTracks user for devices of two cases
    (_new(owntracks_user="anna", owntracks_device="tablet"),
     Holder("ot-9", OTHER, "victim", "anna"), "anna"),
    # one person's phone and tablet under one OwnTracks user: one account, one person
    (_new(owntracks_user="anna", owntracks_device="tablet"),
     Holder("ot-9", CASE, "victim", "anna"), None),
    # nothing shared
    (_new(owntracks_user="bert", owntracks_device="phone"),
     Holder("ot-9", OTHER, "offender", "anna"), None),
])
def test_an_account_shared_across_cases_or_roles_is_a_clash(new, holder, clash):
    why = account_clash(new, [holder])
    assert (why is None) == (clash is None)
    if clash is not None:
        assert repr(clash) in why and str(OTHER) not in why


def test_the_api_refuses_an_offenders_phone_publishing_as_the_victims_device(stack):
    case_id = stack.register("vic-acct")
    api = stack.api()
    refused = api.post("/api/v1/devices", json={
        "id": "off-acct", "case_id": str(case_id), "role": "offender",
        "owntracks_user": "vic-acct", "owntracks_device": "phone"})
    assert refused.status_code == 409, refused.text
    assert "'vic-acct'" in refused.json()["detail"]
    ids = [d["id"] for d in api.get("/api/v1/devices").json()]
    assert "off-acct" not in ids
    tablet = api.post("/api/v1/devices", json={
        "id": "vic-acct-tab", "case_id": str(case_id), "role": "victim",
        "owntracks_user": "vic-acct", "owntracks_device": "tablet"})
    assert tablet.status_code == 201, tablet.text

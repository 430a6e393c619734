"""CAP references on the stack: each Update and the Cancel of an alert reference every earlier
message of it (the raise, the escalation to the police unit, each transition), in order, as
those messages named themselves; the references come from the stored delivery rows, so a
message rendered again from stored data is the same bytes; a subscription that came late gets
the same bodies as one that had every message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from lxml import etree

from backend.escalation.loop import EscalationLoop
from backend.police import cap
from backend.subscriptions import service
from tests.backend.escalation.support import RecordingBus, raise_panic
from tests.support.waiting import wait_until
from tests.support.webhooks import subscribe

pytestmark = pytest.mark.services

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def _schema() -> etree.XMLSchema:
    """The official OASIS schema next to the repository; the repository's copy when absent."""
    root = Path(__file__).resolve().parents[3]
    official = root.parent / "shared" / "data" / "cap" / "CAP-v1.2-schema.xsd"
    packaged = root / "backend" / "police" / "schema" / "CAP-v1.2-schema.xsd"
    return etree.XMLSchema(etree.parse(str(official if official.exists() else packaged)))


def _triplet(root: etree._Element) -> str:
    return ",".join(root.findtext(f"{CAP}{tag}") for tag in ("sender", "identifier", "sent"))


def _by_identifier(receiver, count: int) -> dict[str, bytes]:
    got = receiver.wait_for(count)
    assert len(got) == count and receiver.bad_signatures == 0
    return {etree.fromstring(r.body).findtext(f"{CAP}identifier"): r.body for r in got}


def _police_delivery(api, alert_id) -> str | None:
    return api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"]


def test_updates_and_the_cancel_reference_every_earlier_message_from_stored_rows(
        webhooks, receivers):
    stack = webhooks
    api = stack.api()
    every, late, events = receivers(), receivers(), receivers()
    subscribe(api, every, format="cap")
    subscribe(api, events)  # JSON: each message's document, to render it again below
    alert = raise_panic(stack, "vic-cap-refs")
    # The delivery worker locks the alert to record an outcome; a pass skips it meanwhile.
    wait_until(lambda: _police_delivery(api, alert.id) == "delivered")
    loop = EscalationLoop(stack.runtime, bus=RecordingBus())
    assert loop.run_once(alert.raised_at + timedelta(seconds=60)) == 3  # the last: the police
    every.wait_for(2)
    subscribe(api, late, format="cap")  # a control room that joins the alert from here on
    for action in ("acknowledge", "dispatch", "false-alarm"):
        assert api.post(f"/api/v1/alerts/{alert.id}/{action}").status_code == 200

    bodies = _by_identifier(every, 5)
    prefix = f"schildwacht-{alert.id}"
    order = [f"{prefix}-1", f"{prefix}-1-escalation-3", f"{prefix}-2", f"{prefix}-3",
             f"{prefix}-4"]
    assert sorted(bodies) == sorted(order)
    roots = [etree.fromstring(bodies[identifier]) for identifier in order]
    schema = _schema()
    assert all(schema.validate(root) for root in roots), schema.error_log
    assert [r.findtext(f"{CAP}msgType") for r in roots] == [
        "Alert", "Update", "Update", "Update", "Cancel"]
    assert roots[0].find(f"{CAP}references") is None
    for n, root in enumerate(roots[1:], start=1):
        # Every message before it, as each named itself, in the order they went out.
        assert root.findtext(f"{CAP}references") == " ".join(_triplet(r) for r in roots[:n])
    assert roots[1].findtext(f"{CAP}sent") == cap.cap_time(
        alert.raised_at + timedelta(seconds=60))

    # The subscription that came late gets the alert's messages as every other does, the
    # references to the two it never had included: one body per message.
    late_bodies = _by_identifier(late, 3)
    assert late_bodies == {identifier: bodies[identifier] for identifier in order[2:]}

    # Each message rendered again now, from its document and the stored rows alone (as a
    # retry or replay would), is the bytes it was sent as, though the alert has moved on.
    profile = cap.CapProfile(sender=stack.settings.police.cap_sender)
    documents = [orjson.loads(r.body)["data"] for r in events.wait_for(5)]
    assert len(documents) == 5
    with stack.runtime.sessions() as s:
        for data in documents:
            earlier = service.stored_messages(s, alert.id, data["sequence"])
            again = cap.render(data, profile, earlier)
            assert again == bodies[etree.fromstring(again).findtext(f"{CAP}identifier")]

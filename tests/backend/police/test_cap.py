"""CAP 1.2: Alert, Update and Cancel validated against the OASIS schema, and the mapping."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from backend.police import cap, document
from backend.police.errors import CapValidationError, DocumentError

MakeAlert = Callable[..., dict[str, Any]]
NS = {"cap": cap.CAP_NS}
# The official OASIS schema next to the repository; the repository's copy of it when absent.
OFFICIAL_XSD = (Path(__file__).resolve().parents[4] / "shared" / "data" / "cap"
                / "CAP-v1.2-schema.xsd")
PACKAGED_XSD = (Path(__file__).resolve().parents[3] / "backend" / "police" / "schema"
                / "CAP-v1.2-schema.xsd")
# The escalation member as the escalation loop's police feed message has it (step 3 of the
# shipped P1 chain: the police unit directly, 60 s after the raise).
ESCALATION = {"step": 3, "action": "escalate", "target": "police_unit", "after_s": 60,
              "recipients": [{"kind": "police_unit", "code": "RE07", "reason": "location",
                              "exercise": False, "stands_in_for": None}]}


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def text(root: etree._Element, path: str) -> str:
    found = root.find(path, NS)
    assert found is not None, path
    return found.text or ""


def parameters(root: etree._Element) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for p in root.iterfind("cap:info/cap:parameter", NS):
        params.setdefault(text(p, "cap:valueName"), []).append(text(p, "cap:value"))
    return params


def lifecycle(make_alert: MakeAlert) -> list[dict[str, Any]]:
    return [
        make_alert(),
        make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T18:00:41.5+00:00"),
        make_alert(sequence=3, state="dispatched", updated_at="2026-11-28T18:02:00+00:00"),
        make_alert(sequence=4, state="resolved", updated_at="2026-11-28T18:30:00+00:00"),
    ]


def test_alert_update_cancel_validate_against_the_schema(make_alert: MakeAlert) -> None:
    msg_types = []
    for alert in lifecycle(make_alert):
        xml = cap.render(alert)
        cap.validate(xml)
        msg_types.append(text(parse(xml), "cap:msgType"))
    assert msg_types == ["Alert", "Update", "Update", "Update"]


@pytest.mark.parametrize("state", ["false_alarm", "cancelled"])
def test_false_alarm_and_cancelled_are_cancel(make_alert: MakeAlert, state: str) -> None:
    root = parse(cap.render(make_alert(sequence=2, state=state)))
    assert text(root, "cap:msgType") == "Cancel"
    assert text(root, "cap:info/cap:urgency") == "Past"
    assert text(root, "cap:info/cap:responseType") == "AllClear"


def test_resolved_is_an_all_clear_update_not_a_cancel(make_alert: MakeAlert) -> None:
    """A real alert that is over is not withdrawn: Update, responseType AllClear, urgency Past,
    valid against the official schema."""
    xml = cap.render(make_alert(sequence=4, state="resolved",
                                updated_at="2026-11-28T18:30:00+00:00"))
    assert _official_schema().validate(etree.fromstring(xml))
    root = parse(xml)
    assert text(root, "cap:msgType") == "Update"
    assert text(root, "cap:info/cap:responseType") == "AllClear"
    assert text(root, "cap:info/cap:urgency") == "Past"
    assert text(root, "cap:info/cap:severity") == "Severe"  # the priority's, as before
    assert text(root, "cap:info/cap:headline") == "P1 Noodalarm slachtoffer: afgehandeld"
    acknowledged = parse(cap.render(make_alert(sequence=2, state="acknowledged")))
    assert acknowledged.find("cap:info/cap:responseType", NS) is None
    assert text(acknowledged, "cap:info/cap:urgency") == "Immediate"


def test_without_earlier_messages_given_updates_reference_the_first(make_alert: MakeAlert
                                                                    ) -> None:
    first, *later = [parse(cap.render(alert)) for alert in lifecycle(make_alert)]
    assert first.find("cap:references", NS) is None
    expected = ",".join(
        [text(first, "cap:sender"), text(first, "cap:identifier"), text(first, "cap:sent")]
    )
    assert expected == (
        "urn:schildwacht:backend,schildwacht-9b2f6c1e-7d4a-4c1b-9a51-2f0d1e6b7a01-1,"
        "2026-11-28T18:00:00+00:00"
    )
    for message in later:
        assert text(message, "cap:references") == expected
        assert text(message, "cap:incidents") == text(first, "cap:incidents")
    identifiers = [text(m, "cap:identifier") for m in [first, *later]]
    assert len(set(identifiers)) == 4


def _official_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OFFICIAL_XSD if OFFICIAL_XSD.exists()
                                           else PACKAGED_XSD)))


def _chain(make_alert: MakeAlert) -> list[dict[str, Any]]:
    """An alert's messages in the order they went out: the raise, its escalation to the police
    unit, the acknowledgement, a re-alert of the acknowledged alert, the dispatch, and at last a
    false alarm (a Cancel)."""
    return [
        make_alert(),
        make_alert(escalation=copy.deepcopy(ESCALATION)),
        make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T18:01:30.7+00:00"),
        make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T18:01:30.7+00:00",
                   escalation={**ESCALATION, "step": 4, "action": "re_alert", "after_s": 941}),
        make_alert(sequence=3, state="dispatched", updated_at="2026-11-28T18:20:00+00:00"),
        make_alert(sequence=4, state="false_alarm", updated_at="2026-11-28T18:30:00+00:00"),
    ]


def _message(alert: dict[str, Any]) -> document.Message:
    """The message as the backend stores it with its deliveries."""
    step = document.escalation_step(alert) or 0
    return document.Message(alert["sequence"], step, document.message_time(alert))


def _triplet(root: etree._Element) -> str:
    return ",".join(text(root, f"cap:{tag}") for tag in ("sender", "identifier", "sent"))


def test_each_update_and_the_cancel_reference_every_earlier_message_in_order(
    make_alert: MakeAlert,
) -> None:
    """Each message names every message before it as that message named itself (sender,
    identifier, sent), in the order they went out: a consumer that applies the Cancel drops the
    escalation Updates too, not only the first message."""
    chain = _chain(make_alert)
    sent: list[document.Message] = []
    roots = []
    for alert in chain:
        roots.append(parse(cap.render(alert, earlier=list(sent))))
        sent.append(_message(alert))
    assert [text(r, "cap:msgType") for r in roots] == [
        "Alert", "Update", "Update", "Update", "Update", "Cancel"]
    assert roots[0].find("cap:references", NS) is None
    for n, root in enumerate(roots[1:], start=1):
        assert text(root, "cap:references") == " ".join(_triplet(r) for r in roots[:n])
    prefix = "urn:schildwacht:backend,schildwacht-9b2f6c1e-7d4a-4c1b-9a51-2f0d1e6b7a01"
    assert text(roots[-1], "cap:references").split(" ") == [
        f"{prefix}-1,2026-11-28T18:00:00+00:00",
        f"{prefix}-1-escalation-3,2026-11-28T18:01:00+00:00",
        f"{prefix}-2,2026-11-28T18:01:30+00:00",
        f"{prefix}-2-escalation-4,2026-11-28T18:15:41+00:00",
        f"{prefix}-3,2026-11-28T18:20:00+00:00",
    ]
    schema = _official_schema()
    assert all(schema.validate(root) for root in roots)


def test_a_message_rendered_again_later_is_the_same_bytes(make_alert: MakeAlert) -> None:
    """A retry or replay renders a message from what is stored by then: the alert's later
    messages, each once per delivery, in any order. Its bytes are those it was first sent as."""
    chain = _chain(make_alert)
    messages = [_message(alert) for alert in chain]
    first = [cap.render(alert, earlier=messages[:n]) for n, alert in enumerate(chain)]
    stored = [*reversed(messages), *messages]  # every message, twice (two subscriptions)
    assert [cap.render(alert, earlier=stored) for alert in chain] == first
    assert first[2] != cap.render(chain[2])  # not for want of references: it has more


def test_earlier_messages_of_another_time_of_one_key_keep_the_earliest(make_alert: MakeAlert
                                                                       ) -> None:
    acknowledged = make_alert(sequence=2, state="acknowledged")
    at = document.parse_time("2026-11-28T18:01:00+00:00", "at")
    found = document.earlier_messages(acknowledged, [
        document.Message(1, 3, at + timedelta(seconds=5)), document.Message(1, 3, at),
        document.Message(1, 0, at),  # the first message's time is the document's raised_at
        document.Message(2, 0, at), document.Message(2, 1, at)])  # itself, and later
    assert found == [document.Message(1, 0, document.raised_at(acknowledged)),
                     document.Message(1, 3, at)]


def test_an_escalation_is_an_update_of_its_own_referring_to_the_first_message(
    make_alert: MakeAlert,
) -> None:
    raised = parse(cap.render(make_alert()))
    xml = cap.render(make_alert(escalation=copy.deepcopy(ESCALATION)))
    assert _official_schema().validate(etree.fromstring(xml))
    root = parse(xml)
    assert text(root, "cap:msgType") == "Update"
    # Its own identifier (the raise's sequence, and CAP wants one per message), the raise as
    # the message it updates, and sent when the step fell due.
    assert text(root, "cap:identifier") == (
        "schildwacht-9b2f6c1e-7d4a-4c1b-9a51-2f0d1e6b7a01-1-escalation-3")
    assert text(root, "cap:identifier") != text(raised, "cap:identifier")
    assert text(root, "cap:references") == ",".join(
        [text(raised, "cap:sender"), text(raised, "cap:identifier"), text(raised, "cap:sent")])
    assert text(root, "cap:sent") == "2026-11-28T18:01:00+00:00"
    assert text(root, "cap:info/cap:headline").startswith("ESCALATIE P1")
    assert "niet bevestigd" in text(root, "cap:info/cap:description")
    params = parameters(root)
    assert params["escalation_step"] == ["3"] and params["escalation_after_s"] == ["60"]
    assert params["escalation_action"] == ["escalate"] and params["sequence"] == ["1"]
    again = cap.render(make_alert(escalation={**ESCALATION, "step": 4, "after_s": 90}))
    assert text(parse(again), "cap:identifier").endswith("-1-escalation-4")


def test_an_escalation_of_step_0_keeps_an_identifier_of_its_own(make_alert: MakeAlert) -> None:
    root = parse(cap.render(make_alert(escalation={**ESCALATION, "step": 0})))
    assert text(root, "cap:identifier").endswith("-1-escalation-0")


def test_a_drill_escalation_and_a_re_alert_stay_valid(make_alert: MakeAlert) -> None:
    schema = _official_schema()
    drill = cap.render(make_alert(exercise=True, escalation=copy.deepcopy(ESCALATION)))
    assert schema.validate(etree.fromstring(drill))
    assert text(parse(drill), "cap:status") == "Exercise"
    assert text(parse(drill), "cap:info/cap:headline").startswith("OEFENING ESCALATIE")
    re_alert = make_alert(sequence=2, state="acknowledged",
                          updated_at="2026-11-28T18:00:41+00:00",
                          escalation={**ESCALATION, "step": 4, "action": "re_alert",
                                      "after_s": 941})
    root = parse(cap.render(re_alert))
    assert schema.validate(root)
    assert text(root, "cap:identifier").endswith("-2-escalation-4")
    assert text(root, "cap:sent") == "2026-11-28T18:15:41+00:00"
    assert "nog niet afgehandeld" in text(root, "cap:info/cap:description")


@pytest.mark.parametrize("escalation", [
    "step 3", {"after_s": 60}, {"step": -1, "after_s": 60}, {"step": True, "after_s": 60},
    {"step": 3}, {"step": 3, "after_s": "60"}, {"step": 3, "after_s": float("nan")},
])
def test_a_malformed_escalation_is_a_document_error(
    make_alert: MakeAlert, escalation: Any
) -> None:
    with pytest.raises(DocumentError):
        cap.render(make_alert(escalation=escalation))


def test_identifier_and_sent_are_stable_and_use_a_numeric_offset(make_alert: MakeAlert) -> None:
    alert = make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T19:00:41.9+01:00")
    assert cap.render(alert) == cap.render(copy.deepcopy(alert))
    root = parse(cap.render(alert))
    assert text(root, "cap:sent") == "2026-11-28T18:00:41+00:00"
    assert not text(root, "cap:sent").endswith("Z")


def test_status_actual_exercise_and_test(make_alert: MakeAlert) -> None:
    assert text(parse(cap.render(make_alert())), "cap:status") == "Actual"
    drill = parse(cap.render(make_alert(exercise=True)))
    assert text(drill, "cap:status") == "Exercise"
    assert text(drill, "cap:note").startswith("OEFENING")
    assert text(drill, "cap:info/cap:headline").startswith("OEFENING")
    test_press = parse(cap.render(make_alert(type="test", priority="P4")))
    assert text(test_press, "cap:status") == "Test"


def test_scope_info_and_priority_mapping(make_alert: MakeAlert) -> None:
    root = parse(cap.render(make_alert()))
    assert text(root, "cap:scope") == "Restricted"
    assert text(root, "cap:restriction")
    assert text(root, "cap:info/cap:language") == "nl-NL"
    categories = [c.text for c in root.iterfind("cap:info/cap:category", NS)]
    assert categories == ["Safety", "Security"]
    assert text(root, "cap:info/cap:event") == "Noodalarm slachtoffer"
    assert [
        text(root, f"cap:info/cap:{name}") for name in ("urgency", "severity", "certainty")
    ] == ["Immediate", "Severe", "Observed"]
    assert text(root, "cap:info/cap:senderName")
    assert "P1" in text(root, "cap:info/cap:headline")
    assert text(root, "cap:info/cap:contact") == "police, J. de Vries, +31612345678"


@pytest.mark.parametrize(("priority", "expected"), list(cap.PRIORITY_INFO.items()))
def test_each_priority_maps_to_its_row(
    make_alert: MakeAlert, priority: str, expected: tuple[str, str, str]
) -> None:
    root = parse(cap.render(make_alert(priority=priority)))
    got = tuple(text(root, f"cap:info/cap:{n}") for n in ("urgency", "severity", "certainty"))
    assert got == expected


def test_parameters_carry_ids_priority_case_and_unit(make_alert: MakeAlert) -> None:
    params = parameters(parse(cap.render(make_alert())))
    assert params["alert_id"] == ["9b2f6c1e-7d4a-4c1b-9a51-2f0d1e6b7a01"]
    assert params["priority"] == ["P1"]
    assert params["case_reference"] == ["SW-2026-0001"]
    assert params["police_unit"] == ["RE07"]
    assert params["measure"] == ["exclusion_zone:PV-2026-123"]
    assert params["flags"] == ["late"]


def test_area_circle_from_fix_and_accuracy(make_alert: MakeAlert) -> None:
    root = parse(cap.render(make_alert()))
    assert text(root, "cap:info/cap:area/cap:circle") == "51.920000,4.470000 0.012"
    assert "Rotterdam" in text(root, "cap:info/cap:area/cap:areaDesc")
    geocodes = {
        text(g, "cap:valueName"): text(g, "cap:value")
        for g in root.iterfind("cap:info/cap:area/cap:geocode", NS)
    }
    assert geocodes == {"politie_eenheid": "RE07", "veiligheidsregio": "VR17", "gemeente": "GM0599"}


def test_fix_without_accuracy_uses_the_profile_radius(make_alert: MakeAlert) -> None:
    alert = make_alert(location={"lat": 52.0, "lon": 5.0, "source": "last_known"})
    root = parse(cap.render(alert, cap.CapProfile(unknown_accuracy_m=500.0)))
    assert text(root, "cap:info/cap:area/cap:circle") == "52.000000,5.000000 0.500"


def test_no_location_omits_the_circle_but_stays_valid(make_alert: MakeAlert) -> None:
    root = parse(cap.render(make_alert(location=None, flags=["no_fix"])))
    assert root.find("cap:info/cap:area/cap:circle", NS) is None
    assert text(root, "cap:info/cap:area/cap:areaDesc")
    assert "Geen positie" in text(root, "cap:info/cap:description")


def test_minimal_document_renders_valid_cap() -> None:
    alert = {
        "alert_id": "a1",
        "sequence": 1,
        "type": "device_silent",
        "state": "new",
        "raised_at": "2026-11-28T18:00:00+00:00",
    }
    root = parse(cap.render(alert))
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "Locatie onbekend"
    assert text(root, "cap:info/cap:urgency") == "Unknown"


def test_no_victim_name_in_the_output(make_alert: MakeAlert) -> None:
    alert = make_alert()
    alert["case"]["victim_name"] = "Anna Jansen"
    alert["victim"] = {"name": "Anna Jansen"}
    assert b"Anna" not in cap.render(alert)


def test_the_validator_bites(make_alert: MakeAlert) -> None:
    root = cap.build(make_alert())
    cap.validate(cap.to_bytes(root))

    without_scope = copy.deepcopy(root)
    scope = without_scope.find("cap:scope", NS)
    assert scope is not None
    without_scope.remove(scope)
    with pytest.raises(CapValidationError) as missing:
        cap.validate(cap.to_bytes(without_scope))
    assert missing.value.errors

    zulu = copy.deepcopy(root)
    sent = zulu.find("cap:sent", NS)
    assert sent is not None
    sent.text = "2026-11-28T18:00:00Z"
    with pytest.raises(CapValidationError):
        cap.validate(cap.to_bytes(zulu))

    bad_status = copy.deepcopy(root)
    status = bad_status.find("cap:status", NS)
    assert status is not None
    status.text = "Drill"
    with pytest.raises(CapValidationError):
        cap.validate(cap.to_bytes(bad_status))

    with pytest.raises(CapValidationError):
        cap.validate(b"<alert><unclosed></alert>")


def test_profile_and_document_tokens_refuse_cap_separators(make_alert: MakeAlert) -> None:
    with pytest.raises(ValueError):
        cap.CapProfile(sender="schildwacht,backend")
    with pytest.raises(DocumentError):
        cap.render(make_alert(alert_id="a 1"))
    with pytest.raises(DocumentError):
        cap.render(make_alert(state="closed"))


_text = st.text(max_size=40)
_optional_location = st.none() | st.fixed_dictionaries(
    {
        "lat": st.floats(-90, 90) | st.floats(),  # st.floats() adds nan, inf and out-of-range
        "lon": st.floats(-180, 180) | st.floats(),
        "source": st.sampled_from(["alarm", "last_known"]),
    },
    optional={"acc_m": st.none() | st.floats(0, 50_000) | st.floats(), "fix_time": _text},
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sequence=st.integers(1, 50),
    state=st.sampled_from(sorted(cap.STATE_TEXT)),
    alert_type=st.sampled_from([*cap.EVENTS, "something_new"]),
    priority=st.sampled_from(["P1", "P2", "P3", "P4", "P9"]),
    exercise=st.booleans(),
    location=_optional_location,
    reference=_text,
    contact_name=_text,
    flags=st.lists(_text, max_size=3),
    escalation=st.none() | st.fixed_dictionaries(
        {"step": st.integers(0, 20), "after_s": st.integers(0, 86_400)},
        optional={"action": st.sampled_from(["re_notify", "escalate", "re_alert"]) | _text},
    ),
    earlier=st.lists(st.builds(
        document.Message, st.integers(1, 50), st.integers(0, 20),
        st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))),
        max_size=6),
)
def test_every_document_validates(
    make_alert: MakeAlert,
    sequence: int,
    state: str,
    alert_type: str,
    priority: str,
    exercise: bool,
    location: dict[str, Any] | None,
    reference: str,
    contact_name: str,
    flags: list[str],
    escalation: dict[str, Any] | None,
    earlier: list[document.Message],
) -> None:
    alert = make_alert(
        sequence=sequence,
        state=state,
        type=alert_type,
        priority=priority,
        exercise=exercise,
        location=location,
        flags=flags,
        escalation=escalation,
    )
    alert["case"]["reference"] = reference
    alert["case"]["contacts"][0]["name"] = contact_name
    # render() validates; parse proves it is well-formed
    root = parse(cap.render(alert, earlier=earlier))
    assert text(root, "cap:status") in {"Actual", "Exercise", "Test"}

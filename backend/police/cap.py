"""The CAP police format: OASIS Common Alerting Protocol 1.2 XML built from the alert document.

- `identifier` `{prefix}-{alert_id}-{sequence}`: stable per alert and sequence; an escalation's
  `{prefix}-{alert_id}-{sequence}-escalation-{step}` (CAP wants one identifier per message, and
  an escalation shares its sequence with the message it escalates).
- `sent`: the transition's time in whole seconds with a numeric offset (`+00:00`; the schema
  rejects `Z`). The first message's `sent` is `raised_at`, later ones `updated_at`; an
  escalation's the moment its step fell due (`raised_at` + `escalation.after_s`).
- `status` Actual; Exercise when the document's `exercise` is true (drill mode); Test for a device
  test press (type `test` or flag `test`).
- `msgType` Alert for the first message (sequence 1), Cancel for false_alarm / cancelled (the
  alert is withdrawn: there was nothing, or it was raised in error), Update for the other
  transitions, for an escalation (`document.message_kind`) and for resolved: an alert that was
  real and is over is an Update with responseType AllClear, as CAP practice has it, not a Cancel.
  An escalation says so in its headline (`ESCALATIE`), its description and its `escalation_*`
  parameters.
- `references` (Update and Cancel): every earlier message of the alert, in order (sequence,
  then escalation step), as space-separated `sender,identifier,sent` triplets (CAP 1.2 3.2.1). A
  CAP consumer takes a message to supersede only those it references: had an Update or Cancel
  named the first message alone, an escalation Update before it would have stayed active. The
  first message is always there (derived from the alert id and `raised_at`); the others are the
  `earlier` messages the caller gives (`document.Message`: sequence, escalation step and time,
  which make the identifier and `sent` as that message had them; the backend's come from the
  alert's stored delivery rows, `backend.subscriptions.hook`). They are the alert's
  messages, not those of one consumer: a message is rendered once, the same for every
  subscriber, and a consumer ignores a reference to a message it never had (a unit called in at
  an escalation step never had the raise).
- `scope` Restricted with a `restriction` text; `incidents` the alert id.
- one `info` (nl-NL) with category, event, urgency/severity/certainty from the priority (table
  `PRIORITY_INFO`; a closing message, Cancel or resolved, has urgency Past and responseType
  AllClear), senderName, headline, description (no victim name), contact, `parameter`s and an
  `area` with `areaDesc`, a `circle` of the fix with its accuracy as radius (omitted without a
  location) and geocodes of the region.

`render()` validates every document against the packaged OASIS schema before returning it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from backend.police import document
from backend.police.document import Alert, MessageKind
from backend.police.errors import CapValidationError, DocumentError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CONTENT_TYPE = "application/cap+xml; charset=utf-8"
LANGUAGE = "nl-NL"

# priority -> (urgency, severity, certainty).
# P1 is an observed event that needs action now; Severe ("significant threat to life or
# property") rather than Extreme, which CAP reserves for extraordinary, large-scale threats.
PRIORITY_INFO: dict[str, tuple[str, str, str]] = {
    "P1": ("Immediate", "Severe", "Observed"),
    "P2": ("Expected", "Moderate", "Likely"),
    "P3": ("Expected", "Minor", "Possible"),
    "P4": ("Unknown", "Minor", "Unlikely"),
}
UNKNOWN_INFO = ("Unknown", "Unknown", "Unknown")

# alert type -> (event name, CAP categories)
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "panic": ("Noodalarm slachtoffer", ("Safety", "Security")),
    "fall": ("Valalarm slachtoffer", ("Safety", "Rescue")),
    "zone_breach": ("Overtreding gebiedsverbod", ("Security",)),
    "proximity": ("Overtreding contactverbod (nabijheid dader)", ("Security",)),
    "approach": ("Nadering door dader", ("Security",)),
    "tamper": ("Sabotage apparaat", ("Security",)),
    "device_silent": ("Apparaat geeft geen signaal", ("Safety",)),
    "battery_low": ("Batterij apparaat bijna leeg", ("Safety",)),
    "no_fix": ("Apparaat zonder positie", ("Safety",)),
    "test": ("Testmelding apparaat", ("Safety",)),
}

STATE_TEXT = {
    "new": "nieuw",
    "acknowledged": "bevestigd door de meldkamer",
    "dispatched": "eenheid ingezet",
    "resolved": "afgehandeld",
    "false_alarm": "loos alarm",
    "cancelled": "ingetrokken",
}
ROLE_TEXT = {"victim": "slachtoffer", "offender": "dader"}
LOCATION_SOURCE_TEXT = {"alarm": "positie bij de melding", "last_known": "laatst bekende positie"}

_MSG_TYPE = {MessageKind.ALERT: "Alert", MessageKind.UPDATE: "Update", MessageKind.CANCEL: "Cancel",
             MessageKind.ESCALATION: "Update"}
# Closing states whose message is an Update (AllClear), not a Cancel: the alert was real.
_CLOSED_BY_UPDATE = frozenset({"resolved"})
# CAP forbids spaces, commas and the restricted characters < and & in sender and identifier.
_CAP_TOKEN = re.compile(r"^[^\s,<&]+$")
# Characters XML 1.0 cannot carry.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_E = ElementMaker(namespace=CAP_NS, nsmap={None: CAP_NS})


@dataclass(frozen=True, slots=True)
class CapProfile:
    """Who we are in CAP terms; the backend passes one from its settings."""

    sender: str = "urn:schildwacht:backend"
    sender_name: str = "Schildwacht, Veilig Thuis 24-uursdienst"
    identifier_prefix: str = "schildwacht"
    restriction: str = (
        "Vertrouwelijk: alleen voor de politie en de Veilig Thuis 24-uursdienst; bevat "
        "gegevens over een slachtoffer van stalking. Niet doorsturen."
    )
    # Radius of the area circle when the fix carries no accuracy.
    unknown_accuracy_m: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("sender", "identifier_prefix"):
            if not _CAP_TOKEN.match(getattr(self, name)):
                raise ValueError(f"CAP {name} must not contain spaces, commas, < or &")


def cap_time(moment: datetime) -> str:
    """A CAP time: whole seconds, numeric offset (`2026-11-28T18:00:00+00:00`)."""
    return document.parse_time(moment, "time").strftime("%Y-%m-%dT%H:%M:%S+00:00")


def identifier(alert: Alert, profile: CapProfile, sequence: int | None = None,
               escalation_step: int = 0) -> str:
    """This message's identifier; with `sequence`, that of the alert's message of that sequence
    and escalation step (0: the raise's or a transition's)."""
    alert_id = document.alert_id(alert)
    if not _CAP_TOKEN.match(alert_id):
        raise DocumentError("alert_id must not contain spaces, commas, < or &")
    if sequence is not None:
        base = f"{profile.identifier_prefix}-{alert_id}-{sequence}"
        return f"{base}-escalation-{escalation_step}" if escalation_step else base
    base = f"{profile.identifier_prefix}-{alert_id}-{document.sequence(alert)}"
    if document.message_kind(alert) is MessageKind.ESCALATION:
        return f"{base}-escalation-{document.escalation_step(alert)}"
    return base


def references(alert: Alert, profile: CapProfile,
               earlier: Iterable[document.Message] = ()) -> str:
    """`sender,identifier,sent` of every message of the alert before this one, in order and
    space-separated: the first message, and those of `earlier` that come before this one
    (`document.earlier_messages`). Pure: the same `earlier`, or one with later messages added,
    gives the same text."""
    return " ".join(
        f"{profile.sender},"
        f"{identifier(alert, profile, message.sequence, message.escalation_step)},"
        f"{cap_time(message.time)}"
        for message in document.earlier_messages(alert, earlier)
    )


def msg_type(alert: Alert) -> str:
    """CAP's msgType of this message. A resolved alert is an Update, not a Cancel: a Cancel
    withdraws the messages it references (sent in error, a false alarm), while an alert that was
    real and is now over is brought to an end by an Update with responseType AllClear."""
    kind = document.message_kind(alert)
    if kind is MessageKind.CANCEL and document.state(alert) in _CLOSED_BY_UPDATE:
        return "Update"
    return _MSG_TYPE[kind]


def status(alert: Alert) -> str:
    if alert.get("exercise") is True:
        return "Exercise"
    if alert.get("type") == "test" or "test" in document.flags(alert):
        return "Test"
    return "Actual"


def _text(value: Any) -> str:
    return _NOT_XML.sub("", str(value))


def _pair(tag: str, name: str, value: Any) -> etree._Element:
    return _E(tag, _E.valueName(_text(name)), _E.value(_text(value)))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _circle(location: Mapping[str, Any], profile: CapProfile) -> str | None:
    """`lat,lon radius_km` of the fix; None without a usable position."""
    lat, lon = _number(location.get("lat")), _number(location.get("lon"))
    if lat is None or lon is None or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    acc = _number(location.get("acc_m"))
    radius_m = acc if acc is not None and acc >= 0 else profile.unknown_accuracy_m
    return f"{lat:.6f},{lon:.6f} {radius_m / 1000.0:.3f}"


def _event(alert: Alert) -> tuple[str, tuple[str, ...]]:
    alert_type = str(document.required(alert, "type"))
    return EVENTS.get(alert_type, (f"Schildwacht-melding ({alert_type})", ("Safety",)))


def _seconds(value: Any) -> str:
    return f"{float(value):.0f}"


def _escalation_text(alert: Alert) -> str | None:
    """What an escalation tells the police, None for any other message."""
    if document.message_kind(alert) is not MessageKind.ESCALATION:
        return None
    found = document.escalation(alert) or {}
    after = _seconds(found["after_s"])
    if found.get("action") == "re_alert":
        return (f"Herhaalde melding (stap {found['step']}): {after} s na de melding nog niet "
                "afgehandeld.")
    return (f"Escalatie (stap {found['step']}): {after} s na de melding niet bevestigd door "
            "de 24-uursdienst.")


def _description(alert: Alert, event: str, circle: str | None) -> str:
    device = document.section(alert, "device")
    location = document.section(alert, "location")
    case = document.section(alert, "case")
    lines = [f"{event}, status: {STATE_TEXT[document.state(alert)]}."]
    escalation = _escalation_text(alert)
    if escalation is not None:
        lines.append(escalation)
    if device.get("id"):
        role = ROLE_TEXT.get(str(device.get("role")), str(device.get("role") or "onbekend"))
        lines.append(f"Apparaat {device['id']} ({role}).")
    if case:
        parts = [f"Dossier {case.get('reference') or case.get('id') or 'onbekend'}"]
        if case.get("risk_level"):
            parts.append(f"risico {case['risk_level']}")
        if case.get("custody_status"):
            parts.append(f"detentiestatus {case['custody_status']}")
        lines.append(", ".join(parts) + ".")
    if circle is not None:
        source = LOCATION_SOURCE_TEXT.get(str(location.get("source")), "positie")
        source = source[0].upper() + source[1:]
        acc = _number(location.get("acc_m"))
        accuracy = f"nauwkeurigheid {acc:.0f} m" if acc is not None else "nauwkeurigheid onbekend"
        fix_time = f", gemeten {location['fix_time']}" if location.get("fix_time") else ""
        lat, lon = circle.split(" ")[0].split(",")
        lines.append(f"{source}: {lat}, {lon}, {accuracy}{fix_time}.")
    else:
        lines.append("Geen positie beschikbaar.")
    measures = [
        f"{m.get('type', 'maatregel')}" + (f" ({m['reference']})" if m.get("reference") else "")
        for m in document.items(case, "measures")
    ]
    if measures:
        lines.append("Maatregelen: " + "; ".join(measures) + ".")
    contacts = [
        ", ".join(str(c[k]) for k in ("organisation", "name", "phone") if c.get(k))
        for c in document.items(case, "contacts")
    ]
    if contacts:
        lines.append("Contactpersonen: " + "; ".join(contacts) + ".")
    flags = document.flags(alert)
    if flags:
        lines.append("Signalen: " + ", ".join(flags) + ".")
    return _text("\n".join(lines))


def _contact(alert: Alert) -> str | None:
    contacts = document.items(document.section(alert, "case"), "contacts")
    police = [c for c in contacts if c.get("organisation") == "police"] or contacts
    if not police:
        return None
    first = police[0]
    return ", ".join(str(first[k]) for k in ("organisation", "name", "phone") if first.get(k))


def _parameters(alert: Alert) -> list[tuple[str, Any]]:
    case = document.section(alert, "case")
    region = document.section(alert, "region")
    location = document.section(alert, "location")
    params: list[tuple[str, Any]] = [
        ("alert_id", document.alert_id(alert)),
        ("sequence", document.sequence(alert)),
        ("alert_type", alert.get("type")),
        ("priority", alert.get("priority")),
        ("state", document.state(alert)),
        ("case_reference", case.get("reference")),
        ("risk_level", case.get("risk_level")),
        ("custody_status", case.get("custody_status")),
        ("police_unit", region.get("police_unit")),
        ("location_source", location.get("source")),
        ("location_accuracy_m", location.get("acc_m")),
        ("flags", ",".join(document.flags(alert)) or None),
    ]
    if document.message_kind(alert) is MessageKind.ESCALATION:
        found = document.escalation(alert) or {}
        params += [("escalation_step", found["step"]),
                   ("escalation_after_s", _seconds(found["after_s"])),
                   ("escalation_action", found.get("action"))]
    for measure in document.items(case, "measures"):
        params.append(("measure", f"{measure.get('type', '')}:{measure.get('reference', '')}"))
    return [(name, value) for name, value in params if value is not None and value != ""]


def _area(alert: Alert, profile: CapProfile) -> tuple[etree._Element, str | None]:
    region = document.section(alert, "region")
    location = document.section(alert, "location")
    circle = _circle(location, profile) if location else None
    unit = region.get("police_unit")
    unit_text = (
        f"politie-eenheid {region.get('police_unit_name') or unit} ({unit})" if unit else None
    )
    if circle is not None:
        role = ROLE_TEXT.get(str(document.section(alert, "device").get("role")), "onbekend")
        source = LOCATION_SOURCE_TEXT.get(str(location.get("source")), "positie")
        desc = f"Apparaat {role}, {source}" + (f", {unit_text}" if unit_text else "")
    else:
        desc = f"Werkgebied {unit_text}" if unit_text else "Locatie onbekend"
    area = _E.area(_E.areaDesc(_text(desc)))
    if circle is not None:
        area.append(_E.circle(circle))
    for name, key in (
        ("politie_eenheid", "police_unit"),
        ("veiligheidsregio", "vr_code"),
        ("gemeente", "gemeente_code"),
    ):
        if region.get(key):
            area.append(_pair("geocode", name, region[key]))
    return area, circle


def build(alert: Alert, profile: CapProfile = CapProfile(),
          earlier: Iterable[document.Message] = ()) -> etree._Element:
    """The CAP `<alert>` element for one alert message (not yet validated); `earlier`: the
    alert's messages it follows, for its `references` (see `references`)."""
    kind = document.message_kind(alert)
    priority = str(alert.get("priority") or "")
    urgency, severity, certainty = PRIORITY_INFO.get(priority, UNKNOWN_INFO)
    if kind is MessageKind.CANCEL:  # a closing message: Cancel, or a resolved alert's Update
        urgency = "Past"
    event, categories = _event(alert)
    area, circle = _area(alert, profile)
    msg_status = status(alert)

    root = _E.alert(
        _E.identifier(identifier(alert, profile)),
        _E.sender(profile.sender),
        _E.sent(cap_time(document.message_time(alert))),
        _E.status(msg_status),
        _E.msgType(msg_type(alert)),
        _E.scope("Restricted"),
        _E.restriction(_text(profile.restriction)),
    )
    if msg_status == "Exercise":
        root.append(_E.note("OEFENING: geen echte melding, niet uitrukken."))
    elif msg_status == "Test":
        root.append(_E.note("TEST: technische testmelding, negeren."))
    if kind is not MessageKind.ALERT:
        root.append(_E.references(references(alert, profile, earlier)))
    root.append(_E.incidents(document.alert_id(alert)))

    info = _E.info(_E.language(LANGUAGE), *[_E.category(c) for c in categories], _E.event(event))
    if kind is MessageKind.CANCEL:
        info.append(_E.responseType("AllClear"))
    info.extend([_E.urgency(urgency), _E.severity(severity), _E.certainty(certainty)])
    info.append(_pair("eventCode", "schildwacht_alert_type", alert.get("type")))
    headline = f"{priority} {event}: {STATE_TEXT[document.state(alert)]}".strip()
    if kind is MessageKind.ESCALATION:
        headline = f"ESCALATIE {headline}"
    if msg_status == "Exercise":
        headline = f"OEFENING {headline}"
    info.extend(
        [
            _E.senderName(_text(profile.sender_name)),
            _E.headline(_text(headline)),
            _E.description(_description(alert, event, circle)),
        ]
    )
    contact = _contact(alert)
    if contact:
        info.append(_E.contact(_text(contact)))
    info.extend(_pair("parameter", name, value) for name, value in _parameters(alert))
    info.append(area)
    root.append(info)
    return root


def to_bytes(root: etree._Element) -> bytes:
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return xml


def render(alert: Alert, profile: CapProfile = CapProfile(),
           earlier: Iterable[document.Message] = ()) -> bytes:
    """The CAP 1.2 XML for one alert message, validated against the schema; `earlier`: the
    alert's messages it follows (see `references`)."""
    xml = to_bytes(build(alert, profile, earlier))
    validate(xml)
    return xml


@cache
def _schema() -> etree.XMLSchema:
    xsd = resources.files("backend.police").joinpath("schema", "CAP-v1.2-schema.xsd")
    with xsd.open("rb") as handle:
        return etree.XMLSchema(etree.parse(handle, _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


_schema_lock = threading.Lock()  # an lxml validator keeps its error log on the instance


def validate(xml: bytes) -> None:
    """Raise `CapValidationError` unless `xml` is a CAP 1.2 document valid against the schema."""
    try:
        tree = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        raise CapValidationError("CAP document is not well-formed XML", [str(exc)]) from exc
    with _schema_lock:
        schema = _schema()
        if schema.validate(tree):
            return
        errors = [f"{e.line}: {e.message}" for e in schema.error_log]
    raise CapValidationError("CAP document is not valid against the CAP 1.2 schema", errors)

"""The only module of the project that reads or writes protocol JSON.

Decoding is strict (a clear ProtocolError for anything off-contract) except for alarms: an alarm
from a registered device must never be dropped for bad metadata, so `decode_alarm_lenient` keeps
whatever fields are readable and reports the rest as flags.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from device_protocol.errors import InvalidPayload, MalformedPayload, PayloadTooLarge
from device_protocol.models import (
    MAX_PAYLOAD_BYTES,
    Ack,
    Alarm,
    ConfigCommand,
    Fix,
    FixBatch,
    OwnTracksLocation,
    Status,
    WarnCommand,
)

M = TypeVar("M", bound=BaseModel)


def _load_object(payload: bytes, max_bytes: int) -> dict[str, Any]:
    if len(payload) > max_bytes:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {max_bytes}")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise MalformedPayload("payload is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload("payload is not a JSON object")
    return data


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Field names and error kinds only: never echo values (they may be coordinates).
        fields = sorted({_field_name(model, e["loc"]) for e in exc.errors()})
        raise InvalidPayload(f"invalid fields: {', '.join(fields)}") from None


def _field_name(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """Where an error is, in the model's own field names: a key of the sender's own (a further
    setting of a config command) is text of the sender's, and not repeated."""
    if not loc:
        return "(root)"
    known = {f.alias or name for name, f in model.model_fields.items()}
    if loc[0] not in known:
        return "(other field)"
    return ".".join(str(p) for p in loc)


# -- uplink ---------------------------------------------------------------------------------------
def decode_fixes(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> list[Fix]:
    """Decode a `loc` payload: one fix or a `{"fixes": [...]}` batch, oldest first."""
    data = _load_object(payload, max_bytes)
    if "fixes" in data:
        batch = _validate(FixBatch, data)
        return sorted(batch.fixes, key=lambda f: f.tst)
    return [_validate(Fix, data)]


def decode_status(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Status:
    return _validate(Status, _load_object(payload, max_bytes))


def decode_alarm(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Alarm:
    """Strict alarm decoding (for tools and tests); the backend uses the lenient one."""
    return _validate(Alarm, _load_object(payload, max_bytes))


def decode_owntracks(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Fix | None:
    """Decode an OwnTracks message; None for message types other than `location`."""
    data = _load_object(payload, max_bytes)
    if data.get("_type") != "location":
        return None
    return _validate(OwnTracksLocation, data).to_fix()


@dataclass(frozen=True, slots=True)
class LenientAlarm:
    """An alarm decoded as far as possible. `issues` names what was unreadable; `derived_id`
    that the body had no usable id, and `alarm.id` was derived from its bytes (the same for
    every alarm sent in the same bytes: a retransmission, or each press of a device whose
    firmware sends one body for all)."""

    alarm: Alarm
    issues: tuple[str, ...]
    derived_id: bool = False

    @property
    def unreadable(self) -> bool:
        return bool(self.issues)


_OPTIONAL_ALARM_FIELDS = ("kind", "tst", "lat", "lon", "acc", "batt")


# What ends a bare token (a number, a literal) in JSON text.
_STRUCTURAL = frozenset(' \t\n\r[]{},:"')
MAX_REPAIRS = 16  # values JSON does not allow that an alarm's body may hold and still be read


# What `_repaired` puts in place of a bare value JSON does not allow: text no field of an alarm
# takes (its control character: no id either).
_NOT_A_VALUE = '"\\u0000not a value"'


def _repaired(text: str) -> Any:
    """JSON text read with each bare value JSON does not allow taken as text no field of an
    alarm takes (`_NOT_A_VALUE`), as firmware printing a missing or odd value
    writes them: `nan`, `-inf` as C prints them, `NaN`, `Infinity` as JavaScript does, `07`
    from a fixed width, `+1`, `.5`, `1e400`, a bare word. Each is found where the reader
    stopped; None when it stopped elsewhere (a syntax error), or after `MAX_REPAIRS`."""
    for _ in range(MAX_REPAIRS + 1):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            lenient = _lenient_strings(text)
            if lenient is not None:
                return lenient
            start = end = exc.pos
            while start > 0 and text[start - 1] not in _STRUCTURAL:
                start -= 1
            while end < len(text) and text[end] not in _STRUCTURAL:
                end += 1
            if start == end:
                return None
            text = f"{text[:start]}{_NOT_A_VALUE}{text[end:]}"
    return None


def _lenient_strings(text: str) -> Any:
    """JSON text read by the standard library, which takes a lone surrogate escape in a string
    (`"\\ud800"`, which a field's validation then refuses) and `NaN`, `Infinity` where orjson
    stops; None when it cannot read it either."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# An alarm larger than the protocol allows is still read, up to this many bytes (the broker's
# packet limit in deploy/mosquitto), for its own id.
OVERSIZE_ALARM_READ_BYTES = 256 * 1024


def _load_alarm_body(payload: bytes, max_bytes: int) -> tuple[dict[str, Any], list[str]]:
    """An alarm's body as an object, and what made it unreadable as a whole.

    A body that is JSON but for values JSON does not allow is read all the same (`_repaired`):
    the field holding such a value fails its validation alone, and the alarm keeps its id,
    kind, time and position.
    """
    try:
        return _load_object(payload, max_bytes), []
    except PayloadTooLarge:
        # Still read, up to what a broker passes (`OVERSIZE_ALARM_READ_BYTES`), for the alarm's
        # own id: its retransmissions are then one alert, and its ack names that id.
        if len(payload) > OVERSIZE_ALARM_READ_BYTES:
            return {}, ["payload_too_large"]
        try:
            return _load_object(payload, OVERSIZE_ALARM_READ_BYTES), ["payload_too_large"]
        except (PayloadTooLarge, MalformedPayload):
            return {}, ["payload_too_large"]
    except MalformedPayload:
        pass
    try:
        data = _repaired(payload.decode("utf-8"))
    except UnicodeDecodeError:
        data = None
    return (data, []) if isinstance(data, dict) else ({}, ["malformed_body"])


def decode_alarm_lenient(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> LenientAlarm:
    """Decode an alarm, keeping every readable field.

    - A body that is not a JSON object, or has no usable `id`, gets a stable id derived from the
      payload bytes (`derived_id`), so that a retransmission of the same bytes is still
      deduplicated.
    - Each optional field that fails validation is dropped (lat and lon only together), also
      one holding a value JSON does not allow (`_load_alarm_body`).
    - Oversize payloads still raise an alarm, flagged, with their own id and fields when they
      are readable JSON of at most `OVERSIZE_ALARM_READ_BYTES` (else a hash of the payload).
    """
    data, issues = _load_alarm_body(payload, max_bytes)

    fields: dict[str, Any] = {}
    derived = False
    try:
        fields["id"] = _validate(Alarm, {"id": data.get("id")}).id
    except InvalidPayload:
        if not issues:
            issues.append("invalid_id")
        # Of the whole payload: two oversize alarms alike in their first bytes are two alarms.
        fields["id"] = "body-" + hashlib.sha256(payload).hexdigest()[:32]
        derived = True

    for name in _OPTIONAL_ALARM_FIELDS:
        if name not in data or data[name] is None:
            continue
        try:
            _validate(Alarm, {"id": fields["id"], name: data[name]})
        except InvalidPayload:
            issues.append(f"invalid_{name}")
            continue
        fields[name] = data[name]
    if ("lat" in fields) != ("lon" in fields):
        fields.pop("lat", None)
        fields.pop("lon", None)
        issues.append("incomplete_position")
    return LenientAlarm(Alarm.model_validate(fields), tuple(issues), derived)


# -- downlink and encoding ------------------------------------------------------------------------
def encode(message: BaseModel) -> bytes:
    """Encode any protocol model (fix, alarm, ack, command...) as compact JSON."""
    return orjson.dumps(message.model_dump(mode="json", exclude_none=True, by_alias=True))


def encode_batch(fixes: list[Fix]) -> bytes:
    return encode(FixBatch(fixes=fixes))


def encode_document(document: dict[str, Any]) -> bytes:
    """Encode a plain JSON document (the police alert document, OwnTracks messages)."""
    return orjson.dumps(document)


def decode_document(payload: bytes, max_bytes: int = 1024 * 1024) -> dict[str, Any]:
    """Decode a plain JSON object, such as a police alert document, for subscribers and tests."""
    return _load_object(payload, max_bytes)


def decode_ack(payload: bytes) -> Ack:
    return _validate(Ack, _load_object(payload, MAX_PAYLOAD_BYTES))


def decode_command(payload: bytes) -> ConfigCommand | WarnCommand:
    data = _load_object(payload, MAX_PAYLOAD_BYTES)
    model = WarnCommand if data.get("cmd") == "warn" else ConfigCommand
    return _validate(model, data)

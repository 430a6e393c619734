from __future__ import annotations

import hashlib

import uuid
from dataclasses import dataclass, field
from typing import Any

from device_protocol import Fix, ParsedTopic, Status
from device_protocol.codec import LenientAlarm

from backend.devices.directory import DeviceInfo


@dataclass(frozen=True, slots=True)
class RawMessage:
    """An MQTT message as received, converted from paho's type at the boundary."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    received_at: float  # server time, epoch seconds
    # The broker's stored copy, replayed on subscribing: not sent now (a retained Last Will).
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a draft confirms: an open alert of its device and type, raised from a less certain
    event of the same thing (a geofence breach first "possible", then "confirmed"), whose
    message id starts with `of_prefix`. That alert is upgraded (`AlertFlow._confirm`) instead
    of a second alert being raised for one event, each escalating on its own: its flag
    `replaces` gives way to the draft's flags, and `actor` names the upgrade on its timeline."""

    of_prefix: str
    replaces: str
    actor: str


@dataclass(slots=True)
class AlertDraft:
    """An alert the pipeline wants raised; the alert flow persists and routes it."""

    type: str
    device_id: str
    case_id: uuid.UUID
    message_id: str | None
    raised_at: float
    device_time: float | None = None
    lat: float | None = None
    lon: float | None = None
    acc: float | None = None
    fix_time: float | None = None
    location_source: str | None = None  # "alarm" | "last_known" | "fix"
    flags: list[str] = field(default_factory=list)
    exercise: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    # A condition the device reports again and again (tamper in every status report), not an
    # event: raised only while the device has no open alert of this type.
    while_none_open: bool = False
    # An alarm the device sent (any kind, tamper too): it retransmits it until it hears
    # `received`, so its alert answers it on the device's ack topic.
    from_alarm: bool = False
    # The alarm's bytes, hashed (`press_digest`): a retransmission sends the same ones, a new
    # press that reuses an old id (a device counting again from 1 after a reset) others.
    press: str | None = None
    # The alarm had no usable id: `message_id` was derived from its bytes, which a device with
    # an id bug may send for every press alike, so a closed alert of it does not take in a
    # later press (`AlertFlow._pressed_again`).
    derived_id: bool = False
    # The broker's retained copy of the alarm, replayed at every subscribe of the alarm worker
    # (a device published it retained): its press reached the worker live before, so it is
    # never a new one (`AlertFlow._pressed_again`), only a redelivery.
    replayed: bool = False
    # An open alert this draft confirms, if there is one, instead of raising its own.
    confirms: Confirmation | None = None


def press_digest(payload: bytes) -> str:
    """A short digest of an alarm's bytes, to tell a new press from a retransmission."""
    return hashlib.sha256(payload).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # a short code, used as a metric label
    detail: str  # safe to log: ids and field names, never values


@dataclass(slots=True)
class Context:
    raw: RawMessage
    topic: ParsedTopic | None = None
    device: DeviceInfo | None = None
    alarm: LenientAlarm | None = None
    fixes: list[Fix] = field(default_factory=list)  # every decoded fix: all are stored
    # Newer than the last accepted: state (one dated too far ahead dated as far as allowed).
    fresh_fixes: list[Fix] = field(default_factory=list)
    status: Status | None = None
    # The message says it was held back by the device: a batch of fixes sent after a gap.
    held: bool = False
    alerts: list[AlertDraft] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    rejection: Rejection | None = None
    ignored: bool = False  # valid but nothing to do (e.g. OwnTracks non-location messages)

    @property
    def done(self) -> bool:
        return self.rejection is not None or self.ignored

    def reject(self, reason: str, detail: str) -> None:
        self.rejection = Rejection(reason, detail)

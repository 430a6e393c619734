"""Payload models of protocol v1, with their limits.

Times are Unix seconds (fractions allowed), coordinates WGS84 degrees, accuracy and speed in
metres and metres per second. Unknown fields are ignored so that firmware can add fields without
breaking older backends. Numbers must be finite (no NaN or infinity).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

MAX_PAYLOAD_BYTES = 8 * 1024
MAX_BATCH_FIXES = 200
ALARM_KINDS = ("panic", "fall", "tamper", "test")
ACK_STATES = ("received", "acknowledged", "dispatched", "resolved", "cancelled")
WARN_REASONS = ("proximity", "zone")

# Numbers and flags are JSON numbers and booleans, nothing else: `true` is not a latitude,
# "52.1" not a number, 1 not a flag (pydantic would otherwise convert them). A number may be
# written without a fraction where it allows one.
Number = Annotated[float, Strict()]
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
# A device's clock may be anything, but not before 2001-09-09 nor beyond the year 2286.
Timestamp = Annotated[Number, Field(gt=1_000_000_000, lt=10_000_000_000)]
Latitude = Annotated[Number, Field(ge=-90, le=90)]
Longitude = Annotated[Number, Field(ge=-180, le=180)]
Accuracy = Annotated[Number, Field(ge=0, le=100_000)]
Speed = Annotated[Number, Field(ge=0, le=350)]
Battery = Annotated[Whole, Field(ge=0, le=100)]
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"  # text without control characters (C0, DEL, C1)
# An alarm's id (and an ack's `ref`, which echoes it): 1-64 characters of any script, spaces
# included, but no control character (logged and stored as text; PostgreSQL refuses a NUL).
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, strict=False)


class Fix(_Payload):
    """One GPS fix: `sd/v1/dev/{id}/loc` (alone or inside a batch) and mapped OwnTracks fixes."""

    tst: Timestamp
    lat: Latitude
    lon: Longitude
    acc: Accuracy | None = None
    vel: Speed | None = None
    batt: Battery | None = None


class FixBatch(_Payload):
    """Fixes buffered during a coverage gap: `{"fixes": [fix, ...]}`."""

    fixes: Annotated[list[Fix], Field(min_length=1, max_length=MAX_BATCH_FIXES)]


class Alarm(_Payload):
    """A button press or device alarm: `sd/v1/dev/{id}/alarm`. Only `id` is required.

    `id` is unique per device and reused when the device retransmits the same alarm.
    """

    id: MessageId
    kind: Literal["panic", "fall", "tamper", "test"] = "panic"
    tst: Timestamp | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    acc: Accuracy | None = None
    batt: Battery | None = None

    @property
    def has_fix(self) -> bool:
        return self.lat is not None and self.lon is not None


class Status(_Payload):
    """Device health: `sd/v1/dev/{id}/status`. The Last Will is `{"online": false}` (no tst)."""

    tst: Timestamp | None = None
    online: Flag | None = None
    batt: Battery | None = None
    charging: Flag | None = None
    tamper: Flag | None = None
    rssi: Annotated[Whole, Field(ge=-200, le=0)] | None = None
    # Printed by the console and stored as text: no control characters (a NUL is refused by
    # PostgreSQL and would fail the whole batch).
    fw: Annotated[str, StringConstraints(max_length=64, pattern=PRINTABLE)] | None = None


class Ack(_Payload):
    """Feedback to the victim on her alarm: `sd/v1/dev/{id}/ack`."""

    ref: MessageId
    state: Literal["received", "acknowledged", "dispatched", "resolved", "cancelled"]
    tst: Timestamp


class ConfigCommand(_Payload):
    """`{"cmd": "config", "report_interval_s": n}`: e.g. pursuit mode while an alert is open.
    Further settings (such as a `notice` to show) are kept; each is text, a number, a flag or
    null, so that every command read can be written again."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    __pydantic_extra__: dict[str, str | int | float | bool | None] = Field(init=False)
    cmd: Literal["config"] = "config"
    report_interval_s: Annotated[Whole, Field(ge=1, le=86_400)]


class WarnCommand(_Payload):
    """`{"cmd": "warn", "reason": "proximity"|"zone", "ref": alert id}`: warn the victim."""

    cmd: Literal["warn"] = "warn"
    reason: Literal["proximity", "zone"]
    ref: MessageId


class OwnTracksLocation(_Payload):
    """The fields we use of an OwnTracks `_type: location` message."""

    type_: Literal["location"] = Field(alias="_type")
    tst: Timestamp
    lat: Latitude
    lon: Longitude
    acc: Accuracy | None = None
    vel: Annotated[Number, Field(ge=0, le=1_300)] | None = None  # OwnTracks reports km/h
    batt: Battery | None = None

    def to_fix(self) -> Fix:
        vel = None if self.vel is None else min(self.vel / 3.6, 350.0)
        return Fix(tst=self.tst, lat=self.lat, lon=self.lon, acc=self.acc, vel=vel, batt=self.batt)

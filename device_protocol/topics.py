"""Topic grammar of protocol v1.

    {root}/dev/{device_id}/alarm|loc|status     uplink from devices
    {root}/dev/{device_id}/ack|cmd              downlink to devices
    {root}/police/{unit}/alerts                 alert feed for police systems
    owntracks/{user}/{device}                   OwnTracks location uplink

`root` is `sd/v1` unless configured otherwise. This module is the one place that knows the
topic layout; everything else asks it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from device_protocol.errors import InvalidTopic

DEFAULT_ROOT = "sd/v1"
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,64}")
# Police unit codes (RE01..RE10) and OwnTracks user/device names share a conservative pattern.
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
OWNTRACKS_ROOT = "owntracks"


class Channel(enum.StrEnum):
    ALARM = "alarm"
    LOC = "loc"
    STATUS = "status"
    ACK = "ack"
    CMD = "cmd"
    OWNTRACKS = "owntracks"


UPLINK_CHANNELS = (Channel.ALARM, Channel.LOC, Channel.STATUS)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    channel: Channel
    device_id: str | None = None  # set for sd/v1/dev/... topics
    owntracks_user: str | None = None  # set for owntracks/... topics
    owntracks_device: str | None = None


def is_valid_device_id(device_id: str) -> bool:
    return DEVICE_ID_PATTERN.fullmatch(device_id) is not None


class Topics:
    """Builds and parses the topics under one root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        root = root.strip("/")
        if not root or any(c in root for c in "+#") or "//" in root:
            raise ValueError(f"invalid topic root {root!r}")
        self.root = root
        self._root_parts = root.split("/")
        self._device_prefix = f"{root}/dev/"
        self._alarm_suffix = f"/{Channel.ALARM.value}"

    # -- building -------------------------------------------------------------------------------
    def device(self, device_id: str, channel: Channel | str) -> str:
        if not is_valid_device_id(device_id):
            raise InvalidTopic(f"invalid device id {device_id!r}")
        channel = Channel(channel)
        if channel is Channel.OWNTRACKS:
            raise InvalidTopic("owntracks topics are not device topics")
        return f"{self.root}/dev/{device_id}/{channel.value}"

    def alarm(self, device_id: str) -> str:
        return self.device(device_id, Channel.ALARM)

    def loc(self, device_id: str) -> str:
        return self.device(device_id, Channel.LOC)

    def status(self, device_id: str) -> str:
        return self.device(device_id, Channel.STATUS)

    def ack(self, device_id: str) -> str:
        return self.device(device_id, Channel.ACK)

    def cmd(self, device_id: str) -> str:
        return self.device(device_id, Channel.CMD)

    def police_alerts(self, unit: str) -> str:
        if SEGMENT_PATTERN.fullmatch(unit) is None:
            raise InvalidTopic(f"invalid police unit {unit!r}")
        return f"{self.root}/police/{unit}/alerts"

    @staticmethod
    def owntracks(user: str, device: str) -> str:
        for part in (user, device):
            if SEGMENT_PATTERN.fullmatch(part) is None:
                raise InvalidTopic(f"invalid owntracks segment {part!r}")
        return f"{OWNTRACKS_ROOT}/{user}/{device}"

    # -- subscriptions the backend makes ---------------------------------------------------------
    def uplink_filters(self) -> list[str]:
        """Topic filters for everything devices send (alarm, loc, status, OwnTracks)."""
        return [f"{self.root}/dev/+/{c.value}" for c in UPLINK_CHANNELS] + [f"{OWNTRACKS_ROOT}/+/+"]

    def police_filter(self, unit: str = "+") -> str:
        return f"{self.root}/police/{unit}/alerts"

    # -- parsing ----------------------------------------------------------------------------------
    def is_alarm(self, topic: str) -> bool:
        """Whether the topic is a device's alarm topic, told without parsing it (to route a
        message the moment it arrives; `parse` still checks the device id). An OwnTracks topic
        is none, whatever its device is called (`owntracks/anna/alarm`)."""
        return topic.startswith(self._device_prefix) and topic.endswith(self._alarm_suffix)

    def parse(self, topic: str) -> ParsedTopic:
        """Parse an uplink or downlink topic; raise InvalidTopic for anything else."""
        parts = topic.split("/")
        if len(parts) == 3 and parts[0] == OWNTRACKS_ROOT:
            user, device = parts[1], parts[2]
            if SEGMENT_PATTERN.fullmatch(user) is None or SEGMENT_PATTERN.fullmatch(device) is None:
                raise InvalidTopic("invalid owntracks topic")
            return ParsedTopic(Channel.OWNTRACKS, owntracks_user=user, owntracks_device=device)
        n = len(self._root_parts)
        if parts[:n] != self._root_parts:
            raise InvalidTopic("topic outside the protocol root")
        rest = parts[n:]
        if len(rest) != 3 or rest[0] != "dev":
            raise InvalidTopic("not a device topic")
        device_id, channel = rest[1], rest[2]
        if not is_valid_device_id(device_id):
            raise InvalidTopic("invalid device id in topic")
        try:
            parsed_channel = Channel(channel)
        except ValueError:
            raise InvalidTopic("unknown channel") from None
        if parsed_channel is Channel.OWNTRACKS:
            raise InvalidTopic("unknown channel")
        return ParsedTopic(parsed_channel, device_id=device_id)

"""Device protocol v1: the MQTT contract between alarm devices and Schildwacht.

Pure code: no network, no database. Firmware teams, the simulator and the load tests build their
payloads through this package, and the backend decodes them through it.

- `topics`: the topic grammar (build and parse).
- `models`: the payload models and their limits.
- `codec`: the only module that reads or writes JSON.
- `errors`: the error tree.
"""

from device_protocol.errors import (
    InvalidPayload,
    InvalidTopic,
    MalformedPayload,
    PayloadTooLarge,
    ProtocolError,
)
from device_protocol.models import (
    ACK_STATES,
    ALARM_KINDS,
    Ack,
    Alarm,
    ConfigCommand,
    Fix,
    Status,
    WarnCommand,
)
from device_protocol.topics import Channel, ParsedTopic, Topics

__all__ = [
    "ACK_STATES",
    "ALARM_KINDS",
    "Ack",
    "Alarm",
    "Channel",
    "ConfigCommand",
    "Fix",
    "InvalidPayload",
    "InvalidTopic",
    "MalformedPayload",
    "ParsedTopic",
    "PayloadTooLarge",
    "ProtocolError",
    "Status",
    "Topics",
    "WarnCommand",
]

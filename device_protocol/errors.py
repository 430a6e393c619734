"""Errors of the device protocol. Each carries a short machine-readable `code` for counters."""


class ProtocolError(ValueError):
    """Base of every protocol error: the message breaks the v1 contract."""

    code = "protocol_error"


class InvalidTopic(ProtocolError):
    """The topic does not match the v1 grammar (unknown channel, bad device id, wrong root)."""

    code = "invalid_topic"


class PayloadTooLarge(ProtocolError):
    """The payload exceeds the size limit (8 KiB by default)."""

    code = "payload_too_large"


class MalformedPayload(ProtocolError):
    """The payload is not UTF-8 JSON, or not a JSON object."""

    code = "malformed_payload"


class InvalidPayload(ProtocolError):
    """The payload is a JSON object but a field is missing, of the wrong type or out of range."""

    code = "invalid_payload"

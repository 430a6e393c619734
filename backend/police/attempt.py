"""The outcome of one webhook delivery attempt, as plain data.

The HTTP client converts a response or exception into an `AttemptResult` (and only the
client does); the retry policy classifies it. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    """Why an attempt produced no HTTP status."""

    TIMEOUT = "timeout"  # connect, read, write or pool timeout
    CONNECT = "connect"  # connection refused, DNS failure, TLS handshake failure
    TRANSPORT = "transport"  # connection dropped mid-request, malformed response
    INVALID_REQUEST = "invalid_request"  # bad URL or unsupported scheme: retrying cannot help


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt: an HTTP status, or an error kind when no response arrived.

    `retry_after_s` is the receiver's Retry-After, already converted to seconds (never negative).
    `detail` is a short diagnostic (an exception class name or reason phrase), never a body.
    """

    status: int | None
    duration_ms: float
    error: ErrorKind | None = None
    retry_after_s: float | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if (self.status is None) == (self.error is None):
            raise ValueError("an attempt has exactly one of status and error")

"""Error tree of the police hand-off package.

    PoliceError
    ├── DocumentError        the alert document lacks a required field or has a malformed value
    ├── SecretError          a webhook secret is not `whsec_` + base64 of 16 to 64 bytes, or a
    │                        sealed one cannot be opened (backend.police.sealing)
    ├── SignatureError       a webhook signature, its headers or its timestamp do not verify
    └── CapValidationError   a CAP document does not validate against the OASIS CAP 1.2 schema

Messages carry ids and field names, never coordinates, names or secrets.
"""

from __future__ import annotations


class PoliceError(Exception):
    """Base of every error raised by `backend.police`."""


class DocumentError(PoliceError):
    """The alert document cannot be rendered: a required field is missing or malformed."""


class SecretError(PoliceError):
    """A webhook secret has the wrong format, or a sealed one cannot be opened."""


class SignatureError(PoliceError):
    """A webhook request does not carry a valid, fresh Standard Webhooks signature."""


class CapValidationError(PoliceError):
    """A CAP document is not valid against the CAP 1.2 schema.

    `errors` holds the schema validator's messages (line: message), for diagnostics.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors: list[str] = list(errors or [])

"""Standard Webhooks signatures (https://www.standardwebhooks.com/), via `standardwebhooks`.

A signed request carries three headers:

- `webhook-id`: the message id, the same on every retry of one message so receivers deduplicate;
  `message_id(delivery_id, sequence)` derives it from the delivery and the alert's sequence.
- `webhook-timestamp`: Unix seconds of this attempt.
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")).

Secrets are `whsec_` + base64 of random bytes (`new_secret()`); the HMAC key is the decoded bytes.
Never log a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from backend.police.errors import SecretError, SignatureError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 64  # as Standard Webhooks; sealed, it still fits its column
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

_DELIVERY_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def new_secret(nbytes: int = SECRET_BYTES) -> str:
    """A fresh random secret, `whsec_` + base64 of `nbytes` random bytes."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise SecretError(f"a webhook secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; raises `SecretError` for a malformed one."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise SecretError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretError("a webhook secret is 'whsec_' + base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretError(f"a webhook secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def message_id(delivery_id: str, sequence: int) -> str:
    """The stable `webhook-id` of one alert sequence on one delivery: `msg_{delivery}_{seq}`.

    Every retry and every replay of that (delivery, sequence) carries the same id.
    """
    if not _DELIVERY_ID.match(str(delivery_id)):
        raise ValueError("delivery id must match [A-Za-z0-9_-]{1,100}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError("sequence must be an integer >= 0")
    return f"msg_{delivery_id}_{sequence}"


def _unix_seconds(timestamp: datetime | int | float) -> int:
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        return int(timestamp.timestamp())
    return int(timestamp)


def sign(
    secret: str, msg_id: str, timestamp: datetime | int | float, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as message `msg_id` at `timestamp`."""
    webhook = Webhook(secret_key(secret))
    seconds = _unix_seconds(timestamp)
    try:
        text = body.decode("utf-8")  # the library signs text; both formats are UTF-8
    except UnicodeDecodeError as exc:
        raise ValueError("webhook bodies must be UTF-8") from exc
    signature = webhook.sign(
        msg_id=msg_id, timestamp=datetime.fromtimestamp(seconds, tz=UTC), data=text
    )
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(seconds), HEADER_SIGNATURE: signature}


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Raise `SignatureError` unless `headers` sign `body` with `secret` within 5 minutes of now.

    Accepts any one matching `v1,` signature among space-separated ones (key rotation).
    """
    webhook = Webhook(secret_key(secret))
    try:
        webhook.verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise SignatureError(str(exc)) from exc
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise SignatureError("malformed webhook signature headers") from exc

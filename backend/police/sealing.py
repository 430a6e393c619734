"""Webhook secrets sealed at rest.

A subscription's `whsec_` secret must be had in clear to sign a delivery, so it cannot be
hashed; it is sealed instead (Fernet: AES-128-CBC with HMAC-SHA256) with keys from the
environment (`SCHILDWACHT_POLICE__SECRET_KEYS`: comma-separated Fernet keys; the first seals,
every one opens). A copy of the database then holds no secret a forger could sign alerts with.

The API seals a secret when it stores it; the delivery worker opens it when it signs, so a key
that is missing or wrong fails that delivery (recorded, "police not reached"), never the
alarm that raised it. Without keys, secrets are stored in clear (the embedded demo,
development), and `schildwacht migrate` warns how many are. With keys, `migrate` seals what is
stored in clear and re-seals with the first key what an older key sealed (`SecretBox.reseal`):
to rotate, put the new key first, migrate, then drop the old one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from backend.police.errors import SecretError

PREFIX = "sealed:v1:"
KEY_HINT = ("a secret key is a Fernet key, 32 url-safe base64 bytes: python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


class SecretBox:
    """Seals and opens secrets with a list of Fernet keys, the first of which seals."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        try:
            self._keys = [Fernet(k.strip()) for k in keys]
        except ValueError as exc:
            raise SecretError(KEY_HINT) from exc
        self._fernet = MultiFernet(self._keys) if self._keys else None

    @classmethod
    def from_setting(cls, value: SecretStr | None) -> SecretBox:
        """The box of a comma-separated key list (None or empty: no keys)."""
        keys = value.get_secret_value() if value is not None else ""
        return cls([k for k in keys.split(",") if k.strip()])

    @property
    def sealing(self) -> bool:
        return self._fernet is not None

    def seal(self, secret: str) -> str:
        """`secret` sealed with the first key; unchanged without keys."""
        if self._fernet is None:
            return secret
        return PREFIX + self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret in clear; a value stored in clear is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise SecretError("a sealed webhook secret needs SCHILDWACHT_POLICE__SECRET_KEYS")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretError("a sealed webhook secret opens with none of the keys") from exc

    def reseal(self, stored: str) -> str | None:
        """The stored value sealed with the first key, or None when it already is (or when
        there are no keys to seal with)."""
        if self._fernet is None:
            return None
        if stored.startswith(PREFIX):
            token = stored[len(PREFIX):].encode("ascii")
            try:
                self._keys[0].decrypt(token)
                return None  # sealed with the first key already
            except InvalidToken:
                pass
        return self.seal(self.open(stored))

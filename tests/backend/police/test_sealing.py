"""Sealing webhook secrets at rest: what is stored holds no secret, opens with any configured key,
re-seals with the first, and fails clearly without the right key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from backend.police import signing
from backend.police.errors import SecretError
from backend.police.sealing import PREFIX, SecretBox


def _key() -> str:
    return Fernet.generate_key().decode()


def test_a_sealed_secret_holds_no_part_of_it_and_opens_again():
    box = SecretBox([_key()])
    secret = signing.new_secret()
    stored = box.seal(secret)
    assert stored.startswith(PREFIX)
    assert secret[len("whsec_"):][:8] not in stored
    assert box.seal(secret) != stored  # a fresh IV each time
    assert box.open(stored) == secret


def test_without_keys_secrets_are_stored_in_clear_and_read_as_they_are():
    box = SecretBox.from_setting(None)
    secret = signing.new_secret()
    assert not box.sealing
    assert box.seal(secret) == secret and box.open(secret) == secret
    assert box.reseal(secret) is None
    with pytest.raises(SecretError, match="needs SCHILDWACHT_POLICE__SECRET_KEYS"):
        box.open(SecretBox([_key()]).seal(secret))


def test_a_wrong_key_fails_clearly():
    secret = signing.new_secret()
    stored = SecretBox([_key()]).seal(secret)
    with pytest.raises(SecretError, match="none of the keys"):
        SecretBox([_key()]).open(stored)
    with pytest.raises(SecretError, match="Fernet key"):
        SecretBox(["not-a-key"])


def test_rotation_opens_with_every_key_and_reseals_with_the_first():
    old, new = _key(), _key()
    secret = signing.new_secret()
    stored = SecretBox([old]).seal(secret)
    rotating = SecretBox.from_setting(SecretStr(f"{new}, {old}"))
    assert rotating.open(stored) == secret
    resealed = rotating.reseal(stored)
    assert resealed is not None and SecretBox([new]).open(resealed) == secret
    assert rotating.reseal(resealed) is None  # already sealed with the first key
    in_clear = rotating.reseal(secret)
    assert in_clear is not None and SecretBox([new]).open(in_clear) == secret

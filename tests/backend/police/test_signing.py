"""Standard Webhooks signatures, checked against an independent implementation of the spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from backend.police import signing
from backend.police.errors import SecretError, SignatureError

BODY = b'{"specversion":"1.0","id":"a/1","data":{"priority":"P1","note":"caf\xc3\xa9"}}'


# --- independent implementation of https://www.standardwebhooks.com/ (not the library) ---------
def spec_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = spec_signature(
        secret, headers["webhook-id"], headers["webhook-timestamp"], body
    ).split(",", 1)[1]
    candidates = [
        sig.split(",", 1)[1]
        for sig in headers["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# -------------------------------------------------------------------------------------------------


@pytest.fixture
def secret() -> str:
    return signing.new_secret()


def test_new_secret_is_whsec_and_base64_of_32_random_bytes() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first[6:], validate=True)) == 32
    assert first != second


def test_signature_verifies_with_independent_implementation(secret: str) -> None:
    now = int(time.time())
    headers = signing.sign(secret, "msg_d1_3", now, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_d1_3"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert spec_verify(secret, headers, BODY)
    assert headers["webhook-signature"] == spec_signature(secret, "msg_d1_3", str(now), BODY)


def test_verify_accepts_independently_signed_request(secret: str) -> None:
    ts = str(int(time.time()))
    headers = {
        "Webhook-Id": "msg_x_1",
        "Webhook-Timestamp": ts,
        "Webhook-Signature": spec_signature(secret, "msg_x_1", ts, BODY),
    }
    signing.verify(secret, headers, BODY)  # header names are case-insensitive


@pytest.mark.parametrize("field", ["body", "timestamp", "id"])
def test_tampering_is_rejected(secret: str, field: str) -> None:
    headers = signing.sign(secret, "msg_d1_3", int(time.time()), BODY)
    body = BODY
    if field == "body":
        body = BODY.replace(b"P1", b"P4")
    elif field == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    else:
        headers["webhook-id"] = "msg_d1_4"
    assert not spec_verify(secret, headers, body)
    with pytest.raises(SignatureError):
        signing.verify(secret, headers, body)


def test_stale_timestamp_is_rejected_even_with_a_valid_signature(secret: str) -> None:
    stale = int(time.time()) - 600
    headers = signing.sign(secret, "msg_d1_3", stale, BODY)
    assert spec_verify(secret, headers, BODY)
    with pytest.raises(SignatureError, match="too old"):
        signing.verify(secret, headers, BODY)


def test_wrong_secret_missing_or_malformed_headers_are_rejected(secret: str) -> None:
    headers = signing.sign(secret, "msg_d1_3", int(time.time()), BODY)
    with pytest.raises(SignatureError):
        signing.verify(signing.new_secret(), headers, BODY)
    with pytest.raises(SignatureError):
        signing.verify(secret, {k: v for k, v in headers.items() if k != "webhook-id"}, BODY)
    with pytest.raises(SignatureError):
        signing.verify(secret, {**headers, "webhook-signature": "garbage"}, BODY)
    with pytest.raises(SignatureError):
        signing.verify(secret, {**headers, "webhook-timestamp": "soon"}, BODY)


def test_any_matching_signature_of_several_is_accepted(secret: str) -> None:
    old_secret = signing.new_secret()
    ts = int(time.time())
    new = signing.sign(secret, "msg_r_1", ts, BODY)["webhook-signature"]
    old = signing.sign(old_secret, "msg_r_1", ts, BODY)["webhook-signature"]
    headers = {"webhook-id": "msg_r_1", "webhook-timestamp": str(ts)}
    signing.verify(secret, {**headers, "webhook-signature": f"v2,xyz {old} {new}"}, BODY)
    assert spec_verify(secret, {**headers, "webhook-signature": f"{old} {new}"}, BODY)


def test_message_id_is_stable_per_delivery_and_sequence() -> None:
    assert signing.message_id("d-1", 3) == signing.message_id("d-1", 3) == "msg_d-1_3"
    assert signing.message_id("d-1", 4) != signing.message_id("d-1", 3)
    assert signing.message_id("d-2", 3) != signing.message_id("d-1", 3)
    with pytest.raises(ValueError):
        signing.message_id("d 1", 3)
    with pytest.raises(ValueError):
        signing.message_id("d-1", -1)


SHORT = "whsec_" + base64.b64encode(b"short").decode()


@pytest.mark.parametrize("bad", ["", "abc", "whsec_", "whsec_not base64!", SHORT])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(SecretError):
        signing.secret_key(bad)
    with pytest.raises(SecretError):
        signing.sign(bad, "msg_1", int(time.time()), BODY)


def test_published_reference_vector() -> None:
    # The example from the Standard Webhooks reference implementations' test suites.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert headers["webhook-signature"] == expected
    assert spec_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) == expected

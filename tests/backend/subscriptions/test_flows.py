"""Re-sealing stored webhook secrets (`schildwacht migrate`): those in clear are sealed, those
sealed with an older key move to the first, one that no key opens is left and logged; what a
replay of a delivery without a body says."""

from __future__ import annotations

import logging
import uuid

from cryptography.fernet import Fernet

from backend.police import signing
from backend.police.sealing import SecretBox
from backend.subscriptions.flows import reseal_secrets
from backend.subscriptions.models import Subscription


def _store(stack, stored: str) -> uuid.UUID:
    with stack.runtime.sessions.begin() as s:
        sub = Subscription(id=uuid.uuid4(), name="meldkamer", url="https://politie.example/h",
                           secret=stored)
        s.add(sub)
        return sub.id


def _stored(stack, sub_id: uuid.UUID) -> str:
    with stack.runtime.sessions() as s:
        sub = s.get(Subscription, sub_id)
        assert sub is not None
        return sub.secret


def test_reseal_seals_clear_and_old_secrets_with_the_first_key(stack, caplog):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    secrets = {name: signing.new_secret() for name in ("clear", "old", "lost")}
    ids = {
        "clear": _store(stack, secrets["clear"]),
        "old": _store(stack, SecretBox([old]).seal(secrets["old"])),
        "lost": _store(stack, SecretBox([Fernet.generate_key().decode()]).seal(secrets["lost"])),
    }
    with stack.runtime.sessions.begin() as s:
        assert reseal_secrets(s, SecretBox.from_setting(None)) == (0, 1)  # no keys: counted

    rotating = SecretBox([new, old])
    with caplog.at_level(logging.ERROR), stack.runtime.sessions.begin() as s:
        assert reseal_secrets(s, rotating) == (2, 0)
    assert f"id={ids['lost']}" in caplog.text and secrets["lost"] not in caplog.text
    only_new = SecretBox([new])
    assert only_new.open(_stored(stack, ids["clear"])) == secrets["clear"]
    assert only_new.open(_stored(stack, ids["old"])) == secrets["old"]
    with stack.runtime.sessions.begin() as s:
        assert reseal_secrets(s, rotating) == (0, 0)  # nothing left to do


def test_a_delivery_without_a_body_says_why_it_cannot_be_replayed():
    """One whose document could never be rendered is told apart from one past the retention
    of alert copies: the operator is pointed at its error, not at the retention."""
    from backend.subscriptions.flows import without_body
    from backend.subscriptions.hook import NOT_RENDERABLE
    from backend.subscriptions.models import Delivery

    unrenderable = Delivery(body=b"", last_error=f"police not reached ({NOT_RENDERABLE}: X)")
    assert "could not be rendered" in without_body(unrenderable)
    assert "retention" in without_body(Delivery(body=b"", last_error="HTTP 503"))
    assert "retention" in without_body(Delivery(body=b"", last_error=None))

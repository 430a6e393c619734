"""Orchestration for the API: subscription management and replay of deliveries.

Each function runs in the caller's transaction; `replay_*` recompute the alert's
`police_delivery` (a replayed failure still counts until it is delivered) and have the delivery
worker woken after the commit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.errors import AlertNotFound
from backend.auth.tokens import loggable
from backend.police import sealing, signing
from backend.police.errors import SecretError
from backend.police.sealing import SecretBox
from backend.subscriptions import service
from backend.subscriptions.errors import (
    DeliveryNotFound,
    InsecureWebhookUrl,
    NothingToReplay,
    SubscriptionNotFound,
)
from backend.subscriptions.hook import NOT_RENDERABLE, WAKE_KEY
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.schemas import SubscriptionCreate, SubscriptionUpdate
from backend.subscriptions.urls import plain_http_refusal

log = logging.getLogger(__name__)


def _check_url(url: str, plain_http_hosts: Collection[str]) -> None:
    if (why := plain_http_refusal(url, plain_http_hosts)) is not None:
        raise InsecureWebhookUrl(why)


def create_subscription(
    session: Session, data: SubscriptionCreate, secrets: SecretBox,
    plain_http_hosts: Collection[str] = (),
) -> tuple[Subscription, str]:
    """The stored subscription (its secret sealed by `secrets`) and its secret in clear, to be
    shown once. Its URL is https, or plain http to a host `plain_http_refusal` allows."""
    _check_url(str(data.url), plain_http_hosts)
    secret = data.secret or signing.new_secret()
    sub = Subscription(
        id=uuid.uuid4(), name=data.name, url=str(data.url),
        secret=secrets.seal(secret), format=data.format,
        police_units=data.police_units, vr_codes=data.vr_codes, alert_types=data.alert_types,
        priorities=data.priorities, active=data.active, drill=data.drill,
        partner=data.partner,
    )
    session.add(sub)
    session.flush()
    log.info("subscription created id=%s format=%s drill=%s", sub.id, sub.format, sub.drill)
    return sub, secret


def reseal_secrets(session: Session, secrets: SecretBox) -> tuple[int, int]:
    """Seal with the first key every stored secret that is in clear or sealed with an older
    key. Returns (resealed, left in clear); one that opens with none of the keys is logged by
    id and left as it is (its deliveries fail until the key is back or the secret is reset)."""
    resealed = clear = 0
    for sub in service.list_subscriptions(session):
        try:
            sealed = secrets.reseal(sub.secret)
        except SecretError:
            log.error("webhook secret of subscription id=%s opens with none of the keys", sub.id)
            continue
        if sealed is not None:
            sub.secret = sealed
            resealed += 1
        elif not sub.secret.startswith(sealing.PREFIX):
            clear += 1
    session.flush()
    return resealed, clear


def get_subscription(session: Session, subscription_id: uuid.UUID) -> Subscription:
    sub = service.get_subscription(session, subscription_id)
    if sub is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} not found")
    return sub


def update_subscription(
    session: Session, subscription_id: uuid.UUID, data: SubscriptionUpdate, secrets: SecretBox,
    plain_http_hosts: Collection[str] = (),
) -> Subscription:
    if data.url is not None:
        _check_url(str(data.url), plain_http_hosts)
    sub = get_subscription(session, subscription_id)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            continue
        if key == "url":
            value = str(value)
        elif key == "secret":
            value = secrets.seal(value)
        elif isinstance(value, list):
            value = sorted(set(value))
        setattr(sub, key, value)
    sub.updated_at = datetime.now(UTC)
    session.flush()
    log.info("subscription updated id=%s", sub.id)
    return sub


def _reopen(
    session: Session, alert_id: uuid.UUID, deliveries: list[Delivery], actor: str,
    urgent: tuple[str, ...], now: datetime,
) -> None:
    service.reopen(session, deliveries, now)
    session.flush()
    alerts_service.add_event(
        session, alert_id, at=now, actor=actor, kind="delivery",
        detail={"replay": [str(d.id) for d in deliveries]},
    )
    alert = alerts_service.get(session, alert_id)
    assert alert is not None
    value = service.police_delivery(session, alert_id, alert.priority, urgent)
    service.set_police_delivery(session, alert_id, value)
    session.info[WAKE_KEY] = True


def without_body(delivery: Delivery) -> str:
    """Why a delivery has no body to send again: it could never be rendered (its
    `last_error` says why), or it is past the retention of alert copies. Pure."""
    if NOT_RENDERABLE in (delivery.last_error or ""):
        return "it could not be rendered (see the delivery's last_error)"
    return "past the retention of alert copies (the body is gone)"


def replay_alert(
    session: Session, alert_id: uuid.UUID, actor: str, urgent: tuple[str, ...],
    now: datetime | None = None,
) -> list[Delivery]:
    """Start a new delivery window for every failed (rejected or unreachable) delivery."""
    if alerts_service.get(session, alert_id) is None:
        raise AlertNotFound(f"alert {alert_id} not found")
    failed = service.failed_deliveries(session, alert_id)
    if not failed:
        raise NothingToReplay(f"alert {alert_id} has no failed delivery")
    bodiless = [d for d in failed if not d.body]
    failed = [d for d in failed if d.body]
    if not failed:
        raise NothingToReplay(f"alert {alert_id}: its failed deliveries have no body to send: "
                              + "; ".join(sorted({without_body(d) for d in bodiless})))
    _reopen(session, alert_id, failed, actor, urgent, now or datetime.now(UTC))
    log.info("alert %s: %d deliveries replayed by %s", alert_id, len(failed),
             loggable(actor))
    return failed


def replay_delivery(
    session: Session, delivery_id: uuid.UUID, actor: str, urgent: tuple[str, ...],
    now: datetime | None = None,
) -> Delivery:
    """Send one delivery again (any state), with the same webhook id, in a new window."""
    delivery = service.get_delivery(session, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    if not delivery.body:
        raise NothingToReplay(f"delivery {delivery_id} has no body to send: "
                              f"{without_body(delivery)}")
    _reopen(session, delivery.alert_id, [delivery], actor, urgent, now or datetime.now(UTC))
    log.info("delivery %s replayed by %s", delivery_id, loggable(actor))
    return delivery


def delivery_detail(session: Session, delivery_id: uuid.UUID) -> dict[str, Any]:
    delivery = service.get_delivery(session, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    return {"delivery": delivery, "log": service.attempts_of(session, delivery_id)}

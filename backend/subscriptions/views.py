"""Thin HTTP for subscriptions (admin only), the delivery log, and replays.

Deliveries are scoped by their alert: a dispatcher or police principal lists, reads and replays
only deliveries of alerts she may see (`backend.auth.scoping`); others answer 404."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.errors import AlertNotFound
from backend.alerts.flows import alert_event
from backend.alerts.models import Alert
from backend.api.deps import require, runtime, session
from backend.auth.scoping import alert_filter, may_see_alert
from backend.auth.tokens import Principal
from backend.runtime import Runtime
from backend.subscriptions import flows, service
from backend.subscriptions.errors import DeliveryNotFound
from backend.subscriptions.models import Delivery
from backend.subscriptions.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionUpdate,
)

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])
deliveries_router = APIRouter(tags=["deliveries"])

ADMIN = require()  # admin only
REPLAYERS = ("dispatcher",)
LOG_READERS = ("dispatcher", "police")


@router.post("", status_code=201, response_model=SubscriptionCreated)
def create_subscription(
    data: SubscriptionCreate, s: Session = Depends(session), _: Principal = Depends(ADMIN),
    rt: Runtime = Depends(runtime),
) -> SubscriptionCreated:
    sub, secret = flows.create_subscription(s, data, rt.secrets,
                                            rt.settings.police.plain_http_hosts)
    s.commit()
    rt.flow.forget_hooks()
    out = SubscriptionOut.model_validate(sub).model_dump()
    return SubscriptionCreated(**out, secret=secret)


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(s: Session = Depends(session), _: Principal = Depends(ADMIN)):
    return [SubscriptionOut.model_validate(x) for x in service.list_subscriptions(s)]


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(
    subscription_id: uuid.UUID, s: Session = Depends(session), _: Principal = Depends(ADMIN)
):
    return SubscriptionOut.model_validate(flows.get_subscription(s, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionOut)
def update_subscription(
    subscription_id: uuid.UUID, data: SubscriptionUpdate, s: Session = Depends(session),
    _: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime),
):
    sub = flows.update_subscription(s, subscription_id, data, rt.secrets,
                                    rt.settings.police.plain_http_hosts)
    s.commit()
    rt.flow.forget_hooks()
    return SubscriptionOut.model_validate(sub)


@router.delete("/{subscription_id}", response_model=SubscriptionOut)
def deactivate_subscription(
    subscription_id: uuid.UUID, s: Session = Depends(session), _: Principal = Depends(ADMIN),
    rt: Runtime = Depends(runtime),
):
    """Deactivate (deliveries and their log are kept)."""
    sub = flows.update_subscription(
        s, subscription_id, SubscriptionUpdate.model_validate({"active": False}), rt.secrets)
    s.commit()
    rt.flow.forget_hooks()
    return SubscriptionOut.model_validate(sub)


# -- deliveries ---------------------------------------------------------------------------------
def _alert_in_scope(s: Session, p: Principal, alert_id: uuid.UUID) -> None:
    alert = alerts_service.get(s, alert_id)
    if alert is None or not may_see_alert(s, p, alert):
        raise AlertNotFound(f"alert {alert_id} not found")


def _delivery_in_scope(s: Session, p: Principal, delivery_id: uuid.UUID) -> None:
    delivery = service.get_delivery(s, delivery_id)
    alert = alerts_service.get(s, delivery.alert_id) if delivery is not None else None
    if alert is None or not may_see_alert(s, p, alert):
        raise DeliveryNotFound(f"delivery {delivery_id} not found")


@deliveries_router.get("/api/v1/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    alert_id: uuid.UUID | None = None,
    state: Literal["pending", "retrying", "delivered", "rejected", "unreachable"] | None = None,
    limit: int = Query(100, ge=1, le=1_000),
    s: Session = Depends(session),
    p: Principal = Depends(require(*LOG_READERS)),
):
    query = select(Delivery).where(Delivery.alert_id.in_(select(Alert.id).where(alert_filter(p))))
    if alert_id is not None:
        query = query.where(Delivery.alert_id == alert_id)
    if state is not None:
        query = query.where(Delivery.state == state)
    rows = s.scalars(query.order_by(Delivery.created_at.desc()).limit(limit))
    return [DeliveryOut.model_validate(d) for d in rows]


@deliveries_router.get("/api/v1/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(
    delivery_id: uuid.UUID, s: Session = Depends(session),
    p: Principal = Depends(require(*LOG_READERS)),
):
    _delivery_in_scope(s, p, delivery_id)
    found = flows.delivery_detail(s, delivery_id)
    out = DeliveryOut.model_validate(found["delivery"]).model_dump()
    return DeliveryDetail(**out, log=[AttemptOut.model_validate(a) for a in found["log"]])


def _publish_alert(rt: Runtime, alert_id: uuid.UUID) -> dict[str, Any] | None:
    from backend.alerts.views import documents

    with rt.sessions() as s:
        alert = alerts_service.get(s, alert_id)
        if alert is None:
            return None
        document = documents(s, [alert])[0]
        event = alert_event(s, "alert.updated", alert, document)
    rt.bus.publish(event)
    return document


@deliveries_router.post("/api/v1/alerts/{alert_id}/deliveries/replay",
                        response_model=list[DeliveryOut])
def replay_alert(
    alert_id: uuid.UUID, rt: Runtime = Depends(runtime),
    p: Principal = Depends(require(*REPLAYERS)),
):
    """Send the alert's failed deliveries again, each in a new delivery window."""
    urgent = tuple(rt.settings.police.urgent_priorities)
    with rt.sessions.begin() as s:
        _alert_in_scope(s, p, alert_id)
        replayed = flows.replay_alert(s, alert_id, p.name, urgent)
        out = [DeliveryOut.model_validate(d) for d in replayed]
    _publish_alert(rt, alert_id)
    return out


@deliveries_router.post("/api/v1/deliveries/{delivery_id}/replay", response_model=DeliveryOut)
def replay_delivery(
    delivery_id: uuid.UUID, rt: Runtime = Depends(runtime),
    p: Principal = Depends(require(*REPLAYERS)),
):
    """Send one delivery again (same webhook id) in a new delivery window."""
    urgent = tuple(rt.settings.police.urgent_priorities)
    with rt.sessions.begin() as s:
        _delivery_in_scope(s, p, delivery_id)
        delivery = flows.replay_delivery(s, delivery_id, p.name, urgent)
        out = DeliveryOut.model_validate(delivery)
    _publish_alert(rt, out.alert_id)
    return out

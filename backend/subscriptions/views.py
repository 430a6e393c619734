"""Thin HTTP for subscriptions (admin only), the delivery log, and replays."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.api.deps import require, runtime, session
from backend.auth.tokens import Principal
from backend.runtime import Runtime
from backend.subscriptions import flows, service
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
    data: SubscriptionCreate, s: Session = Depends(session), _: Principal = Depends(ADMIN)
) -> SubscriptionCreated:
    sub = flows.create_subscription(s, data)
    s.commit()
    return SubscriptionCreated.model_validate(sub)


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
    _: Principal = Depends(ADMIN),
):
    sub = flows.update_subscription(s, subscription_id, data)
    s.commit()
    return SubscriptionOut.model_validate(sub)


@router.delete("/{subscription_id}", response_model=SubscriptionOut)
def deactivate_subscription(
    subscription_id: uuid.UUID, s: Session = Depends(session), _: Principal = Depends(ADMIN)
):
    """Deactivate (deliveries and their log are kept)."""
    sub = flows.update_subscription(s, subscription_id, SubscriptionUpdate.model_validate({"active": False}))
    s.commit()
    return SubscriptionOut.model_validate(sub)


# -- deliveries ---------------------------------------------------------------------------------
@deliveries_router.get("/api/v1/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    alert_id: uuid.UUID | None = None,
    state: Literal["pending", "retrying", "delivered", "rejected", "unreachable"] | None = None,
    limit: int = Query(100, ge=1, le=1_000),
    s: Session = Depends(session),
    _: Principal = Depends(require(*LOG_READERS)),
):
    rows = service.list_deliveries(s, alert_id=alert_id, state=state, limit=limit)
    return [DeliveryOut.model_validate(d) for d in rows]


@deliveries_router.get("/api/v1/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(
    delivery_id: uuid.UUID, s: Session = Depends(session),
    _: Principal = Depends(require(*LOG_READERS)),
):
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
    rt.bus.publish({"event": "alert.updated", "alert": document})
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
        delivery = flows.replay_delivery(s, delivery_id, p.name, urgent)
        out = DeliveryOut.model_validate(delivery)
    _publish_alert(rt, out.alert_id)
    return out

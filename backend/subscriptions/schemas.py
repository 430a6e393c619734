"""Request and response bodies of the subscription and delivery API (validation: 422)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from backend.api.text import free_text
from backend.police import signing
from backend.police.errors import SecretError

AlertType = Literal[
    "panic", "fall", "zone_breach", "proximity", "approach", "tamper", "device_silent",
    "device_silent_storm", "battery_low", "no_fix", "test",
]
Priority = Literal["P1", "P2", "P3", "P4"]
PoliceUnit = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[0-9]{2}$")]
VrCode = Annotated[str, StringConstraints(pattern=r"^VR[0-9]{2}$")]


def _secret(value: str | None) -> str | None:
    if value is not None:
        try:
            signing.secret_key(value)
        except SecretError as exc:
            raise ValueError(str(exc)) from exc
    return value


def _unique(values: list[str]) -> list[str]:
    return sorted(set(values))


class SubscriptionFilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    police_units: list[PoliceUnit] = Field(default_factory=list, max_length=50)
    vr_codes: list[VrCode] = Field(default_factory=list, max_length=50)
    alert_types: list[AlertType] = Field(default_factory=list)
    priorities: list[Priority] = Field(default_factory=list)

    _dedupe = field_validator("police_units", "vr_codes", "alert_types", "priorities")(
        classmethod(lambda cls, v: _unique(v))
    )


class SubscriptionCreate(SubscriptionFilterIn):
    name: free_text(128, min_length=1)
    url: AnyHttpUrl
    # A `whsec_` secret of the receiver's choosing; one is generated when absent.
    secret: str | None = None
    format: Literal["json", "cap"] = "json"
    active: bool = True
    # An exercise endpoint: gets only drill alerts; live subscriptions never get them.
    drill: bool = False
    # Not a police control room (an archive, a partner organisation): see `Subscription`.
    partner: bool = False

    _check_secret = field_validator("secret")(classmethod(lambda cls, v: _secret(v)))


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: free_text(128, min_length=1) | None = None
    url: AnyHttpUrl | None = None
    secret: str | None = None
    format: Literal["json", "cap"] | None = None
    active: bool | None = None
    drill: bool | None = None
    partner: bool | None = None
    police_units: list[PoliceUnit] | None = None
    vr_codes: list[VrCode] | None = None
    alert_types: list[AlertType] | None = None
    priorities: list[Priority] | None = None

    _check_secret = field_validator("secret")(classmethod(lambda cls, v: _secret(v)))


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    url: str
    format: str
    police_units: list[str]
    vr_codes: list[str]
    alert_types: list[str]
    priorities: list[str]
    active: bool
    drill: bool
    partner: bool
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    # Shown once, on create: the receiver verifies signatures with it.
    secret: str


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    at: datetime
    status: int | None
    error: str | None
    duration_ms: float
    outcome: str
    reason: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    webhook_id: str
    subscription_id: uuid.UUID
    alert_id: uuid.UUID
    sequence: int
    # The escalation step the message carries to the police; 0: a raise's or transition's.
    escalation_step: int
    priority: str
    format: str
    state: str
    attempts: int
    created_at: datetime
    window_start: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    # A replayed delivery's failure (rejected, unreachable), until it is delivered.
    replayed_failure: str | None = None


class DeliveryDetail(DeliveryOut):
    log: list[AttemptOut]

"""The facts a routing decision is made from: the alert and the case, as plain frozen values.

Callers build these from their stored models at the edge; the decisions never see a database
row. All datetimes must be timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from backend.routing.errors import InvalidFacts
from backend.routing.policy import PartnerOrganisation

RiskLevel = Literal["low", "medium", "high"]
CustodyState = Literal["in_custody", "released", "none"]


def require_aware(value: datetime | None, name: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidFacts(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What the router needs to know about one alert.

    `test`: a device test press (routed as P4, desk only, marked test).
    `exercise`: part of an exercise; never routed to live recipients.
    `device_id`: the device that raised it (for panic/fall: the victim's device to acknowledge).
    """

    type: str
    raised_at: datetime
    test: bool = False
    exercise: bool = False
    device_id: str | None = None
    alert_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.raised_at, "raised_at")


@dataclass(frozen=True, slots=True)
class Contact:
    """The named contact of one partner organisation for a case (an id, never a name)."""

    id: str
    organisation: PartnerOrganisation
    reachable: bool = True


@dataclass(frozen=True, slots=True)
class CustodyStatus:
    """The offender's custody status: in custody, released (at `released_at`), or none known."""

    state: CustodyState = "none"
    released_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.state == "released" and self.released_at is None:
            raise InvalidFacts("a released custody status needs released_at")
        if self.state != "released" and self.released_at is not None:
            raise InvalidFacts("released_at is only meaningful for a released custody status")
        require_aware(self.released_at, "released_at")


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the router needs to know about the case an alert belongs to."""

    case_id: str
    home_police_unit: str | None = None
    home_vr: str | None = None
    home_vt_desk: str | None = None
    risk_level: RiskLevel = "medium"
    custody: CustodyStatus = field(default_factory=CustodyStatus)
    contacts: tuple[Contact, ...] = ()
    case_director_id: str | None = None
    victim_device_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        organisations = [contact.organisation for contact in self.contacts]
        if len(organisations) != len(set(organisations)):
            raise InvalidFacts("a case has one named contact per partner organisation")

    def contact(self, organisation: PartnerOrganisation) -> Contact | None:
        return next((c for c in self.contacts if c.organisation == organisation), None)

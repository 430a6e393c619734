from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.api.text import free_text

RiskLevel = Literal["low", "medium", "high"]  # SASH risk level
CustodyStatus = Literal["none", "in_custody", "released"]
Organisation = Literal["police", "veilig_thuis", "vrouwenopvang", "three_ro", "om"]
ORGANISATION_ALIASES = {
    "3ro": "three_ro",
    "reclassering": "three_ro",
    "vt": "veilig_thuis",
}

# A release date outside these is a typing error, and one at the edge of the datetime range
# overflows in the custody arithmetic and in the conversion to UTC.
RELEASED_FROM = datetime(1900, 1, 1, tzinfo=UTC)
RELEASED_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)
PSEUDONYM = r"^[A-Za-z0-9_.:-]{3,64}$"
PERSON_ID = r"^[A-Za-z0-9_.:@-]{2,128}$"
PHONE = r"^\+?[0-9][0-9 -]{5,30}$"


def _check_custody(status: str | None, released_at: datetime | None) -> None:
    if status == "released" and released_at is None:
        raise ValueError(
            "custody_status 'released' needs released_at (the release date)"
        )
    if status not in (None, "released") and released_at is not None:
        raise ValueError("released_at is only allowed with custody_status 'released'")
    if released_at is not None and released_at.tzinfo is None:
        raise ValueError(
            "released_at needs a timezone (e.g. 2026-12-01T09:00:00+01:00)"
        )
    if released_at is not None and not RELEASED_FROM <= released_at < RELEASED_UNTIL:
        raise ValueError(f"released_at must lie between {RELEASED_FROM.year} and "
                         f"{RELEASED_UNTIL.year}")


class _CaseFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    home_police_unit: str | None = Field(None, pattern=r"^RE\d{2}$")
    home_vr_code: str | None = Field(None, pattern=r"^VR\d{2}$")
    home_vt_desk: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{2,16}$")
    victim_ref: str | None = Field(
        None, pattern=PSEUDONYM, description="Pseudonymous victim id"
    )
    offender_ref: str | None = Field(
        None, pattern=PSEUDONYM, description="Pseudonymous offender id"
    )
    process_director: str | None = Field(
        None, pattern=PERSON_ID, description="Procesregisseur id"
    )
    case_director: str | None = Field(
        None, pattern=PERSON_ID, description="Casusregisseur id"
    )
    risk_level: RiskLevel | None = Field(None, description="SASH risk level")
    released_at: datetime | None = None
    safety_plan: free_text(10_000) | None = None


class CaseCreate(_CaseFields):
    reference: str = Field(
        pattern=r"^[A-Za-z0-9_-]{3,32}$", description="Pseudonymous case reference"
    )
    custody_status: CustodyStatus = "none"
    exercise: bool = False

    @model_validator(mode="after")
    def _custody(self) -> CaseCreate:
        _check_custody(self.custody_status, self.released_at)
        return self


class CaseUpdate(_CaseFields):
    """Only the fields given change; null clears an optional field."""

    custody_status: CustodyStatus | None = None

    @model_validator(mode="after")
    def _custody(self) -> CaseUpdate:
        if "custody_status" in self.model_fields_set and self.custody_status is None:
            raise ValueError("custody_status cannot be null")
        if "custody_status" in self.model_fields_set:
            _check_custody(self.custody_status, self.released_at)
        elif self.released_at is not None:
            raise ValueError("set released_at together with custody_status 'released'")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organisation: Organisation
    name: free_text(128, min_length=1)
    phone: str = Field(pattern=PHONE)
    reachability: free_text(128) | None = Field(None, description="e.g. 'Mon-Fri 08-17'")

    @field_validator("organisation", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return (
            ORGANISATION_ALIASES.get(value, value) if isinstance(value, str) else value
        )


class ContactUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: free_text(128, min_length=1) | None = None
    phone: str | None = Field(None, pattern=PHONE)
    reachability: free_text(128) | None = None

    @model_validator(mode="after")
    def _not_null(self) -> ContactUpdate:
        for name in ("name", "phone"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    organisation: str
    name: str
    phone: str
    reachability: str | None


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    reference: str
    home_police_unit: str | None
    home_vr_code: str | None
    home_vt_desk: str | None
    victim_ref: str | None
    offender_ref: str | None
    process_director: str | None
    case_director: str | None
    risk_level: str | None
    custody_status: str
    released_at: datetime | None
    # When the tightening of a custody release ends (None: none in force).
    custody_tightened_until: datetime | None
    safety_plan: str | None
    exercise: bool
    contacts: list[ContactOut]
    created_at: datetime

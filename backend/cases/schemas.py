from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RiskLevel = Literal["low", "medium", "high"]
CustodyStatus = Literal["none", "in_custody", "released"]


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(pattern=r"^[A-Za-z0-9_-]{3,32}$", description="Pseudonymous case reference")
    home_police_unit: str | None = Field(None, pattern=r"^RE\d{2}$")
    home_vr_code: str | None = Field(None, pattern=r"^VR\d{2}$")
    risk_level: RiskLevel | None = None
    custody_status: CustodyStatus = "none"
    released_at: datetime | None = None
    safety_plan: str | None = Field(None, max_length=10_000)
    exercise: bool = False


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    reference: str
    home_police_unit: str | None
    home_vr_code: str | None
    risk_level: str | None
    custody_status: str
    released_at: datetime | None
    safety_plan: str | None
    exercise: bool
    created_at: datetime

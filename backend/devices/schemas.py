from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEVICE_ID = r"^[A-Za-z0-9_-]{3,64}$"
SEGMENT = r"^[A-Za-z0-9_.-]{1,64}$"


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=DEVICE_ID)
    case_id: uuid.UUID
    role: Literal["victim", "offender"]
    owntracks_user: str | None = Field(None, pattern=SEGMENT)
    owntracks_device: str | None = Field(None, pattern=SEGMENT)
    report_interval_s: int = Field(60, ge=5, le=3_600)

    @model_validator(mode="after")
    def _owntracks_pair(self) -> DeviceCreate:
        if (self.owntracks_user is None) != (self.owntracks_device is None):
            raise ValueError("owntracks_user and owntracks_device go together")
        return self


class DeviceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool | None = None
    report_interval_s: int | None = Field(None, ge=5, le=3_600)


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    case_id: uuid.UUID
    role: str
    owntracks_user: str | None
    owntracks_device: str | None
    active: bool
    report_interval_s: int
    online: bool | None
    battery: int | None
    tamper: bool | None
    last_status_at: datetime | None
    created_at: datetime

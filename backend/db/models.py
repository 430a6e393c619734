"""Imports every model so that `Base.metadata` is complete (for Alembic and tests)."""

from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.auth.models import ApiToken
from backend.cases.models import Case
from backend.db.base import Base
from backend.devices.models import Device, Ping

__all__ = ["Alert", "AlertEvent", "ApiToken", "Base", "Case", "Device", "OutboxMessage", "Ping"]

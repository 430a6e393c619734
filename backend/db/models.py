"""Imports every model so that `Base.metadata` is complete (for Alembic and tests)."""

from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.audit.models import AuditEntry
from backend.auth.models import ApiToken, User, WebSession
from backend.caselog.models import CaseLogEntry
from backend.cases.models import Case, CaseContact
from backend.db.base import Base
from backend.devices.models import Device, Ping
from backend.measures.models import MeasureCatalog, MeasureRow, OffenderHome
from backend.subscriptions.models import Delivery, DeliveryAttempt, Subscription

__all__ = ["Alert", "AlertEvent", "ApiToken", "AuditEntry", "User", "WebSession", "Base", "Case", "CaseContact", "CaseLogEntry", "Device", "MeasureCatalog", "MeasureRow", "OffenderHome", "OutboxMessage", "Ping",
           "Delivery", "DeliveryAttempt", "Subscription"]

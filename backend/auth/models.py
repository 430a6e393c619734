from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime
from backend.settings import TokenSettings

# partner: a contact person of a partner organisation of a case (Vrouwenopvang, 3RO, the OM...)
# who reads the case's log and adds notes to it (`backend.caselog.views`), and nothing else.
ROLES = ("admin", "dispatcher", "police", "case_director", "partner")


def default_token_expiry() -> datetime:
    """The expiry of a token row made without one (a script, a test): the default lifetime.
    The API and the CLI set it from the settings (`backend.auth.tokens.issue`)."""
    return utcnow() + timedelta(seconds=TokenSettings().lifetime_s)


class ApiToken(Base):
    """A bearer token for a machine client or a person. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Scope: `backend.auth.scope` ({"regions": [...VR codes]} for dispatchers...).
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Refused from this moment on (`backend.auth.tokens.authenticate`), as once revoked.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, default=default_token_expiry)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A person who signs in to the console. Only an argon2 hash of the password is stored."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    # Same shape as ApiToken.scope; {"cases": [...references]} for case directors.
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A console session. The cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

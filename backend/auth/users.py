"""Console users: create, and check a password. Persistence only plus the argon2 check."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.errors import BadCredentials, InvalidScope, UserConflict, UserNotFound
from backend.auth.models import ROLES, User, WebSession
from backend.auth.passwords import (
    DUMMY_HASH,
    hash_password,
    needs_rehash,
    verify_password,
)
from backend.auth.tokens import Principal

USERNAME = re.compile(r"^[a-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 12


def principal_of(user: User) -> Principal:
    return Principal(f"user:{user.username}", user.role, dict(user.scope or {}),
                     f"user#{user.id}")


def add_user(s: Session, username: str, password: str, role: str, scope: dict[str, Any]) -> User:
    if not USERNAME.match(username):
        raise InvalidScope("username: 2-64 of a-z 0-9 _ . -")
    if role not in ROLES:
        raise InvalidScope(f"unknown role {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidScope(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserConflict(f"user {username} exists")
    user = User(username=username, password_hash=hash_password(password), role=role, scope=scope)
    s.add(user)
    s.flush()
    return user


def check_password(s: Session, username: str, password: str) -> User:
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or user.disabled_at is not None:
        verify_password(DUMMY_HASH, password)  # same cost either way
        raise BadCredentials("unknown user or wrong password")
    if not verify_password(user.password_hash, password):
        raise BadCredentials("unknown user or wrong password")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def disable_user(s: Session, username: str, now: datetime | None = None) -> tuple[User, int]:
    """Disable a user: she can no longer sign in, and every console session of hers ends (no
    request is served on one from now on; a live stream closes within `api.stream_recheck_s`).
    Returns the user and how many open sessions were ended. A user disabled already keeps the
    moment she was disabled."""
    user = _named(s, username)
    now = now or datetime.now(UTC)
    if user.disabled_at is None:
        user.disabled_at = now
    ended = s.execute(
        update(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    ).rowcount
    return user, ended or 0


def enable_user(s: Session, username: str) -> User:
    """Let a disabled user sign in again (her ended sessions stay ended)."""
    user = _named(s, username)
    user.disabled_at = None
    return user


def _named(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserNotFound(f"no user {username}")
    return user

"""The credential that opened a long-lived connection (the console stream), checked again while
the connection lasts: a console signed out, a session expired, a user disabled or a token
revoked gets nothing more over it.

A check reads the database at most once every `every_s` seconds (its answer is kept that long),
and always again once a console session or a bearer token has reached its `expires_at`, whether
or not `every_s` has passed. Once a credential grants nothing it stays so: the connection must
end."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from backend.auth import sessions as web_sessions
from backend.auth.tokens import Principal, authenticate_until

log = logging.getLogger(__name__)

# What a credential grants now: the principal and when it expires (None: the bootstrap token).
Grant = tuple[Principal, datetime | None]
Check = Callable[[Session], Grant | None]


def bearer(token: str, admin_token: str | None) -> Check:
    """A bearer token: valid until revoked or expired (the bootstrap admin token: always)."""

    def check(s: Session) -> Grant | None:
        return authenticate_until(s, token, admin_token)

    return check


def console_session(cookie: str) -> Check:
    """A console session: valid until signed out, expired, or its user disabled."""

    def check(s: Session) -> Grant | None:
        return web_sessions.resolve_until(s, cookie)

    return check


class LiveCredential:
    def __init__(self, sessions: sessionmaker[Session], check: Check, every_s: float) -> None:
        self._sessions = sessions
        self._check = check
        self._every_s = every_s
        self._grant: Grant | None = None
        self._checked_at = -math.inf  # time.monotonic() of the last check
        self._lock = asyncio.Lock()
        self.ended = False
        self.failed = False  # ended because the check itself failed (the database)

    async def principal(self) -> Principal | None:
        """The principal the credential grants now; None once it grants nothing."""
        async with self._lock:
            if not self.ended and self._due():
                self._grant = await asyncio.to_thread(self._read)
                self._checked_at = time.monotonic()
                self.ended = self._grant is None
            return None if self.ended or self._grant is None else self._grant[0]

    def next_check_in(self) -> float:
        """Seconds until the credential must be checked again (0: now)."""
        wait = self._checked_at + self._every_s - time.monotonic()
        expires = self._expires_at()
        if expires is not None:
            wait = min(wait, (expires - datetime.now(UTC)).total_seconds())
        return max(0.0, wait)

    async def until_ended(self) -> None:
        """Return once the credential grants nothing (checked as often as `principal`)."""
        while await self.principal() is not None:
            await asyncio.sleep(self.next_check_in())

    def _due(self) -> bool:
        expires = self._expires_at()
        return (time.monotonic() - self._checked_at >= self._every_s
                or (expires is not None and datetime.now(UTC) >= expires))

    def _expires_at(self) -> datetime | None:
        return self._grant[1] if self._grant is not None else None

    def _read(self) -> Grant | None:
        try:
            with self._sessions() as s:
                return self._check(s)
        except SQLAlchemyError as exc:  # not confirmed is not granted: the client reconnects
            log.warning("credential check failed (%s): connection ended", type(exc).__name__)
            self.failed = True
            return None

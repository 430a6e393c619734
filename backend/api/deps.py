"""FastAPI dependencies: the runtime, a database session, the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.auth import sessions as web_sessions
from backend.auth.errors import CsrfRejected, Forbidden, NotAuthenticated
from backend.auth.tokens import Principal, authenticate
from backend.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def session(rt: Runtime = Depends(runtime)) -> Iterator[Session]:
    with rt.sessions() as s:
        yield s


def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    rt: Runtime = Depends(runtime),
    s: Session = Depends(session),
) -> Principal:
    if credentials is None:
        cookie = request.cookies.get(web_sessions.COOKIE)
        if cookie:
            return _cookie_principal(request, s, cookie)
        raise NotAuthenticated("bearer token required")
    admin = rt.settings.api.admin_token
    found = authenticate(s, credentials.credentials, admin.get_secret_value() if admin else None)
    if found is None:
        raise NotAuthenticated("unknown, expired or revoked token")
    return found


def _cookie_principal(request: Request, s: Session, cookie: str) -> Principal:
    """A console session; state changes must carry the session's CSRF token."""
    found = web_sessions.resolve(s, cookie)
    if found is None:
        raise NotAuthenticated("session expired; sign in again")
    who, csrf = found
    if request.method not in web_sessions.SAFE_METHODS and not web_sessions.csrf_ok(
        csrf, request.headers.get(web_sessions.CSRF_HEADER)
    ):
        raise CsrfRejected("missing or wrong CSRF token")
    request.state.via_console = True
    return who


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (admin always)."""

    def check(p: Principal = Depends(principal)) -> Principal:
        if p.role != "admin" and p.role not in roles:
            raise Forbidden(f"role {p.role} may not do this")
        return p

    return check

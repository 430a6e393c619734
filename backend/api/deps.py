"""FastAPI dependencies: the runtime, a database session, the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.auth.errors import Forbidden, NotAuthenticated
from backend.auth.tokens import Principal, authenticate
from backend.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def session(rt: Runtime = Depends(runtime)) -> Iterator[Session]:
    with rt.sessions() as s:
        yield s


def principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    rt: Runtime = Depends(runtime),
    s: Session = Depends(session),
) -> Principal:
    if credentials is None:
        raise NotAuthenticated("bearer token required")
    admin = rt.settings.api.admin_token
    found = authenticate(s, credentials.credentials, admin.get_secret_value() if admin else None)
    if found is None:
        raise NotAuthenticated("unknown or revoked token")
    return found


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (admin always)."""

    def check(p: Principal = Depends(principal)) -> Principal:
        if p.role != "admin" and p.role not in roles:
            raise Forbidden(f"role {p.role} may not do this")
        return p

    return check

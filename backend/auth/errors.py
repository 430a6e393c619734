"""Errors of authentication and authorisation; mapped to HTTP in `backend.api.errors`."""


class AuthError(Exception):
    pass


class NotAuthenticated(AuthError):
    """No or an unknown bearer token."""


class Forbidden(AuthError):
    """The principal's role or scope does not allow this."""


class BadCredentials(AuthError):
    """Unknown user, wrong password or a disabled account (one error: no user enumeration)."""


class CsrfRejected(AuthError):
    """A state-changing request with a session cookie lacked the session's CSRF token."""


class UserConflict(AuthError):
    """A user with this username exists already."""


class InvalidScope(AuthError):
    """A scope that does not fit the role (e.g. a dispatcher without regions)."""


class ReasonRequired(AuthError):
    """Location data outside an open alert may only be read with a stated reason."""


class TokenNotFound(AuthError):
    """No bearer token has this id."""


class InvalidLifetime(AuthError):
    """A token's lifetime asked for beyond the settings' maximum (`tokens.max_lifetime_s`)."""


class NotRevocable(AuthError):
    """The bootstrap admin token is set in the settings: it ends only where it is set."""


class UserNotFound(AuthError):
    """No console user has this name."""

"""Errors of authentication and authorisation; mapped to HTTP in `backend.api.errors`."""


class AuthError(Exception):
    pass


class NotAuthenticated(AuthError):
    """No or an unknown bearer token."""


class Forbidden(AuthError):
    """The principal's role or scope does not allow this."""

"""Errors of the alert domain; mapped to HTTP in `backend.api.errors` only."""


class AlertError(Exception):
    pass


class AlertNotFound(AlertError):
    pass


class InvalidTransition(AlertError):
    """The transition does not apply to the alert's current state (e.g. acknowledge a resolved
    alert)."""

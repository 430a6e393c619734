"""Errors of the escalation package."""


class EscalationError(Exception):
    pass


class BadStoredPlan(EscalationError):
    """An alert's stored escalation plan cannot be read back."""

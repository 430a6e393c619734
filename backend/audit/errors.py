"""Errors of the audit log."""


class AuditError(Exception):
    pass


class AuditWriteFailed(AuditError):
    """The audit entry could not be written; the read it belongs to must not be served."""

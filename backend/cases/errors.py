"""Errors of the case domain; mapped to HTTP in `backend.api.errors`."""


class CaseError(Exception):
    pass


class CaseNotFound(CaseError):
    pass


class CaseConflict(CaseError):
    """E.g. a case reference that is already in use, or a second contact of one organisation."""


class CaseInUse(CaseError):
    """The case still has devices or alerts and cannot be deleted."""

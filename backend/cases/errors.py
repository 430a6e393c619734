"""Errors of the case domain; mapped to HTTP in `backend.api.errors`."""


class CaseError(Exception):
    pass


class CaseNotFound(CaseError):
    pass


class CaseConflict(CaseError):
    """E.g. a case reference that is already in use, or a second contact of one organisation."""


class CaseInUse(CaseError):
    """The case still has devices or alerts and cannot be deleted."""


class UnknownHomeRegion(CaseError):
    """A home police unit, safety region or Veilig Thuis desk that the region data does not
    know (422): alerts of the case without a position would reach nobody."""

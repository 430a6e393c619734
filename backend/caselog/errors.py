"""Errors of the case log; mapped to HTTP in `backend.api.errors`."""


class CaseLogError(Exception):
    pass


class ChainConflict(CaseLogError):
    """Another writer appended to the same case at the same time; retry."""

"""How a database error is logged: by its type and SQLSTATE, never by its message. Pure.

The engine hides a statement's parameters from its errors (`hide_parameters`), but the server's
own message can carry values too: PostgreSQL's DETAIL of a refused row repeats the row ("Failing
row contains (...)", a victim's position among it), and logs carry ids, never coordinates.
"""

from __future__ import annotations


def loggable(exc: BaseException) -> str:
    """The error's type and, when the driver gives one, its SQLSTATE (PostgreSQL) or error name
    (SQLite), e.g. "IntegrityError sqlstate=23514"."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return f"{type(exc).__name__} sqlstate={code}" if code else type(exc).__name__

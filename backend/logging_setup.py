"""Logging for every Schildwacht process: ids and codes only, never coordinates or secrets.

Each call site keeps to that; this module sets levels and the format, and withholds what a call
site cannot: the messages of the errors that quote their input, in a logged traceback.
PostgreSQL explains a refused row with the row itself ("DETAIL: Failing row contains (...,
51.92, 4.47, ...)"), and the driver puts that in the error's message, whatever the engine's
`hide_parameters`; a traceback of such an error shows its type, its SQLSTATE and where it was
raised, not its text. A validation error (pydantic) names where and why, not the value.
"""

from __future__ import annotations

import logging
import traceback

NOISY = ("alembic", "amqtt", "transitions", "uvicorn.access", "httpx", "httpcore", "hpack",
         "websockets", "urllib3")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=FORMAT, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(WithholdingFormatter(FORMAT))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


class WithholdingFormatter(logging.Formatter):
    """Formats tracebacks with the messages of errors that quote their input withheld."""

    def format(self, record: logging.LogRecord) -> str:
        # A handler before this one may have left its own text of the traceback on the record
        # (logging keeps the first); this one's replaces it, for the handlers after it too.
        record.exc_text = None
        return super().format(record)

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        _type, value, _tb = ei
        if value is None:
            return super().formatException(ei)
        return "".join(traceback.format_exception(withheld(value))).rstrip("\n")


def withheld(exc: BaseException) -> BaseException:
    """`exc` as a traceback may show it: unchanged when no error in its chain (cause and
    context) quotes its input; else a copy of the chain with the same names, messages and
    tracebacks, but for those errors' messages (`_withheld_message`)."""
    return _copied(exc, {}) if _quotes_input_in(exc) else exc


def _withheld_message(exc: BaseException) -> str | None:
    """What a traceback says of an error that quotes its input, None for any other error."""
    import psycopg
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError | psycopg.Error):
        code = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None),
                                                         "sqlstate", None)
        return f"(sqlstate {code or 'unknown'}) message withheld: it may carry row values"
    if isinstance(exc, ValidationError):
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors(
            include_url=False, include_context=False, include_input=False))
        return f"{exc.error_count()} validation error(s) for {exc.title} ({where})"
    return None


def _quotes_input_in(exc: BaseException) -> bool:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if _withheld_message(e) is not None:
            return True
        todo += [e.__cause__, e.__context__]
    return False


def _copied(exc: BaseException, seen: dict[int, BaseException]) -> BaseException:
    if id(exc) in seen:
        return seen[id(exc)]
    message = _withheld_message(exc)
    if message is None:
        message = str(exc)
    kind = type(exc)
    named = type(kind.__name__, (Exception,), {"__module__": kind.__module__,
                                               "__qualname__": kind.__qualname__})
    copy = named(message).with_traceback(exc.__traceback__)
    seen[id(exc)] = copy
    copy.__cause__ = _copied(exc.__cause__, seen) if exc.__cause__ is not None else None
    copy.__context__ = _copied(exc.__context__, seen) if exc.__context__ is not None else None
    copy.__suppress_context__ = exc.__suppress_context__
    return copy

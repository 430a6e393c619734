"""Reading many rows as columns of plain values: for passes over every device (150,000 in the
pilot's sizing), where a Python object per row and value would cost more than the query.

`fetch_columns(session, statement)` runs a select through the driver's cursor and returns its
columns; `epoch_us` (a time as whole microseconds since the epoch) and `uuid_text` (a UUID as
`str(uuid.UUID)` writes it) select such values the same way on PostgreSQL and on SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Select, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class epoch_us(FunctionElement[int]):  # noqa: N801 (used as a SQL function)
    """A timestamp column as whole microseconds since the epoch (NULL stays NULL). Exact on
    PostgreSQL; on SQLite, which keeps times as text, to the millisecond."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_us"


class uuid_text(FunctionElement[str]):  # noqa: N801 (used as a SQL function)
    """A UUID column as `str(uuid.UUID)` would write it: lowercase, with hyphens."""

    type = String()
    inherit_cache = True
    name = "uuid_text"


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    # 2440587.5 is the Julian day of 1970-01-01 00:00 UTC.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(ROUND((julianday({column}) - 2440587.5) * 86400000000.0) AS INTEGER)"


@compiles(uuid_text, "postgresql")
def _uuid_text_postgresql(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(uuid_text, "sqlite")
def _uuid_text_sqlite(element: uuid_text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy keeps a UUID on SQLite as its 32 hex digits.
    x = compiler.process(element.clauses, **kw)
    parts = [f"substr({x}, {start}, {length})"
             for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    return "lower(" + " || '-' || ".join(parts) + ")"


def fetch_columns(session: Session, statement: Select[Any]) -> list[list[Any]]:
    """The statement's result as one list per selected column, in the session's transaction.

    The rows come from the driver's cursor as plain tuples (SQLAlchemy's `Row` objects and
    result processing cost about three times the query for 150,000 rows), so the statement
    must select values that need no result processing: strings, numbers, booleans, and
    `epoch_us` / `uuid_text` for times and UUIDs."""
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect,
                                compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    width = len(statement.selected_columns)
    return [list(column) for column in zip(*rows, strict=True)] or [[] for _ in range(width)]

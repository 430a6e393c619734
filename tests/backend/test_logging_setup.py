"""A logged traceback of a database error shows its type, SQLSTATE and where it was raised,
never the row PostgreSQL explains it with (a victim's position, a name)."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from backend.logging_setup import FORMAT, WithholdingFormatter, withheld

pytestmark = pytest.mark.services

ROW = {"lat": 51.923456, "name": "Jane Doe"}  # given as parameters: no source line shows them


def _logged(exc_raiser) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(WithholdingFormatter(FORMAT))
    log = logging.getLogger("test.withheld")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            exc_raiser()
        except Exception:
            log.exception("write failed id=%s", "alert-7")
    finally:
        log.removeHandler(handler)
    return out.getvalue()


def _refused_row(pg_url: str) -> None:
    engine = create_engine(pg_url, hide_parameters=True)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TEMP TABLE refused (id int, lat float, name text "
                              "CHECK (name <> 'Jane Doe'))"))
            conn.execute(text("INSERT INTO refused VALUES (1, :lat, :name)"), ROW)
    finally:
        engine.dispose()


def test_a_refused_rows_values_stay_out_of_the_log(pg_url):
    with pytest.raises(IntegrityError) as raised:
        _refused_row(pg_url)
    assert "51.923456" in str(raised.value)  # what the driver says, and the log must not

    logged = _logged(lambda: _refused_row(pg_url))
    assert "write failed id=alert-7" in logged
    assert "sqlalchemy.exc.IntegrityError: (sqlstate 23514) message withheld" in logged
    assert "psycopg.errors.CheckViolation: (sqlstate 23514)" in logged  # its cause, too
    assert "_refused_row" in logged  # where it was raised
    assert "51.923456" not in logged and "Jane Doe" not in logged


def test_other_errors_are_logged_as_they_are():
    def fail() -> None:
        raise ValueError("no case with reference C-1")

    logged = _logged(fail)
    assert "ValueError: no case with reference C-1" in logged
    error = ValueError("x")
    assert withheld(error) is error


def test_a_validation_error_says_where_and_why_not_the_value():
    from pydantic import BaseModel, Field

    class Position(BaseModel):
        lat: float = Field(le=90)

    def fail() -> None:
        try:
            Position.model_validate({"lat": SECRET_LAT})
        except Exception as exc:
            raise RuntimeError("fix not stored") from exc

    logged = _logged(fail)
    assert "1 validation error(s) for Position (lat: less_than_equal)" in logged
    assert "RuntimeError: fix not stored" in logged
    assert str(SECRET_LAT) not in logged


SECRET_LAT = 151.923456

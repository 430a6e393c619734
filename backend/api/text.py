"""Free text a request may carry into the database: `free_text(n)`, a string of at most `n`
characters without NUL and without lone surrogates, the type of every free-text field and
parameter (`note: free_text(2_000) | None = None`). PostgreSQL refuses a NUL in text, and a
lone surrogate (which JSON's `\\ud800` escapes can make) cannot be encoded as UTF-8, so a request
carrying either is refused with a clear 422 before anything is written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints


def storable(value: str) -> str:
    """The value if the database can store it as text; ValueError otherwise."""
    if "\x00" in value:
        raise ValueError("text may not contain the NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text may not contain a lone surrogate (\\ud800-\\udfff)") from None
    return value


def free_text(max_length: int, *, min_length: int = 0) -> Any:
    """The type of free text of `min_length` to `max_length` characters the database can store.
    (The length is part of the type, checked before `storable`, so that a text too long is
    refused as one, also where the field may be null.) As a parameter with a default, nest it:
    `free_text(500) | None = Query(None)`, `Annotated[free_text(64), Form()]`; FastAPI drops
    what an `Annotated` type carries when it is the whole annotation and `Query()` or `Form()`
    its default."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(storable)]

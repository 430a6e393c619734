"""One line of text for a case log entry, as the console shows it: a note's text, else the
entry's fields as `name: value` pairs (a change as `from -> to`). Pure; entries hold no
position, so neither does a line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MAX_CHARS = 400


def summary(kind: str, data: Mapping[str, Any], max_chars: int = MAX_CHARS) -> str:
    if kind == "note":
        text = str(data.get("text", ""))
    else:
        text = "; ".join(_pairs(data))
    return text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"


def _pairs(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        if value is None or value == [] or value == {}:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and set(value) == {"from", "to"}:
            yield f"{name}: {_plain(value['from'])} \u2192 {_plain(value['to'])}"
        elif isinstance(value, Mapping):
            yield from _pairs(value, f"{name}.")
        elif isinstance(value, list):
            yield f"{name}: " + ", ".join(_plain(v) for v in value)
        else:
            yield f"{name}: {_plain(value)}"


def _plain(value: Any) -> str:
    """A value in a list or a change: a mapping by its values (a recipient: `police_unit
    RE07`), nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return " ".join(_plain(v) for v in value.values() if v is not None)
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)

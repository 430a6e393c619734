"""Who reads which entries of a case log, and who writes notes in it (the API and the
console's case page share these)."""

from __future__ import annotations

# What each role reads of a case log (None: everything). The police see what concerns alerts
# and custody; notes and contact changes stay with the care partners. The contact persons of
# the partner organisations (Vrouwenopvang, 3RO, the OM...) read it all: the log is theirs to
# share, and it holds no position.
ROLE_KINDS: dict[str, frozenset[str] | None] = {
    "admin": None,
    "case_director": None,
    "dispatcher": None,
    "police": frozenset(
        {"alert", "transition", "escalation", "delivery", "custody_release", "measure"}
    ),
    "partner": None,
}
READERS = tuple(r for r in ROLE_KINDS if r != "admin")  # admin: always
WRITERS = ("case_director", "dispatcher", "partner")  # notes


def kinds_read(role: str) -> set[str] | None:
    """The kinds of entries `role` reads (None: every kind); a role not named reads none."""
    if role not in ROLE_KINDS:
        return set()
    kinds = ROLE_KINDS[role]
    return None if kinds is None else set(kinds)

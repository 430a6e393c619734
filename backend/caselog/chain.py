"""Hash chaining of case log entries. Pure.

hash = SHA-256(prev_hash + canonical JSON of the entry), where the entry is
{case_id, seq, at, kind, actor, alert_id, data}; canonical JSON has sorted keys, no whitespace
and UTF-8. The first entry of a case chains to `GENESIS` (64 zeros).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainEntry:
    case_id: str
    seq: int
    at: datetime
    kind: str
    actor: str
    alert_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    reason: str | None = None


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """The data as it will read back from a JSON column (so hashing is stable)."""
    return orjson.loads(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str,
    *,
    case_id: str,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    alert_id: str | None,
    data: dict[str, Any],
) -> str:
    body = {
        "case_id": case_id,
        "seq": seq,
        "at": _iso(at),
        "kind": kind,
        "actor": actor,
        "alert_id": alert_id,
        "data": data,
    }
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


def verify_chain(entries: Iterable[ChainEntry]) -> Verification:
    """Check every link in seq order; report the first entry whose hash or link is wrong."""
    prev = GENESIS
    count = 0
    expected_seq = 1
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return Verification(False, count, entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev:
            return Verification(False, count, entry.seq, "prev_hash does not match")
        actual = entry_hash(
            prev,
            case_id=entry.case_id,
            seq=entry.seq,
            at=entry.at,
            kind=entry.kind,
            actor=entry.actor,
            alert_id=entry.alert_id,
            data=entry.data,
        )
        if actual != entry.hash:
            return Verification(
                False, count, entry.seq, "content does not match its hash"
            )
        prev = entry.hash
        expected_seq += 1
    return Verification(True, count)

"""Hash chaining of case log entries, pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from backend.caselog.chain import GENESIS, ChainEntry, entry_hash, verify_chain

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _chain(n: int) -> list[ChainEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = dict(
            case_id="c-1",
            seq=seq,
            at=T0 + timedelta(seconds=seq),
            kind="note",
            actor="cd-1",
            alert_id=None,
            data={"text": f"note {seq}", "n": seq},
        )
        digest = entry_hash(prev, **fields)
        entries.append(ChainEntry(**fields, prev_hash=prev, hash=digest))
        prev = digest
    return entries


def test_an_intact_chain_verifies():
    result = verify_chain(_chain(5))
    assert result.ok and result.entries == 5 and result.first_broken_seq is None


def test_the_hash_covers_content_and_key_order_does_not_matter():
    a = entry_hash(
        GENESIS,
        case_id="c",
        seq=1,
        at=T0,
        kind="k",
        actor="a",
        alert_id=None,
        data={"x": 1, "y": 2},
    )
    b = entry_hash(
        GENESIS,
        case_id="c",
        seq=1,
        at=T0,
        kind="k",
        actor="a",
        alert_id=None,
        data={"y": 2, "x": 1},
    )
    c = entry_hash(
        GENESIS,
        case_id="c",
        seq=1,
        at=T0,
        kind="k",
        actor="a",
        alert_id=None,
        data={"x": 1, "y": 3},
    )
    assert a == b != c and len(a) == 64


def test_an_edited_entry_is_named():
    entries = _chain(5)
    entries[2] = replace(entries[2], data={"text": "rewritten", "n": 3})
    result = verify_chain(entries)
    assert not result.ok and result.first_broken_seq == 3
    assert "hash" in (result.reason or "")


def test_a_removed_entry_is_named():
    entries = _chain(5)
    del entries[1]
    result = verify_chain(entries)
    assert not result.ok and result.first_broken_seq == 3


def test_a_rehashed_entry_breaks_the_next_link():
    entries = _chain(4)
    forged = replace(entries[1], actor="someone else")
    forged = replace(
        forged,
        hash=entry_hash(
            forged.prev_hash,
            case_id=forged.case_id,
            seq=forged.seq,
            at=forged.at,
            kind=forged.kind,
            actor=forged.actor,
            alert_id=forged.alert_id,
            data=forged.data,
        ),
    )
    entries[1] = forged
    result = verify_chain(entries)
    assert (
        not result.ok
        and result.first_broken_seq == 3
        and "prev_hash" in (result.reason or "")
    )

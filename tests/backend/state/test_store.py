"""The hot state store: the Redis layout (two hashes, a batch in one round trip) against the
real Redis, the in-memory store behind the same interface, and the pending view the ingest
worker uses."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from backend.state import keys
from backend.state.store import (
    ClockReading,
    InMemoryState,
    LastFix,
    PendingState,
    SEEN_AHEAD_S,
    RedisState,
    decode_clock,
    decode_fix,
    decode_fix_time,
    decode_zones,
    encode_clock,
    encode_fix,
    encode_zones,
)
from tests.support.unreachable import unreachable_redis


class CountingRoundTrips:
    """A Redis client that counts round trips: each pipeline and each script call."""

    def __init__(self, inner: redis.Redis) -> None:
        self._inner = inner
        self.calls = 0

    def pipeline(self, transaction: bool = False):
        self.calls += 1
        return self._inner.pipeline(transaction=transaction)

    def register_script(self, text: str):
        script = self._inner.register_script(text)

        def call(**kwargs):
            self.calls += 1
            return script(**kwargs)

        return call


@pytest.fixture
def prefix(redis_client: redis.Redis):
    p = f"swtest{uuid.uuid4().hex[:8]}"
    yield p
    redis_client.delete(keys.last_fixes(p), keys.last_seen(p), keys.zone_states(p),
                        keys.clock_readings(p), *keys.untagged(p))


@pytest.fixture(params=["redis", "memory"])
def store(request, redis_client: redis.Redis, prefix: str):
    return RedisState(redis_client, prefix) if request.param == "redis" else InMemoryState()


def test_fix_encoding_round_trips_with_and_without_accuracy() -> None:
    for fix in (LastFix(1_700_000_000.25, 51.9225, 4.4792, 8.5), LastFix(1.0, -0.5, 179.9, None)):
        assert decode_fix(encode_fix(fix)) == fix


@pytest.mark.parametrize("junk", [b"", b"1 2 3", b"a b c d", b"1 2 3 4 5"])
def test_unreadable_stored_fix_reads_as_absent(junk: bytes) -> None:
    assert decode_fix(junk) is None


@pytest.mark.parametrize("junk", [None, b"", b"1 2 3", b"a b c d", b"1 2 3 4 5"])
def test_fix_time_of_an_unreadable_fix_is_unknown(junk: bytes | None) -> None:
    assert decode_fix_time(junk) is None


def test_fix_time_is_the_time_decode_fix_reads() -> None:
    for fix in (LastFix(1_700_000_000.123456, 51.9, 4.4, 8.0), LastFix(-1.5, 0.0, 0.0, None)):
        assert decode_fix_time(encode_fix(fix)) == fix.tst


def test_times_are_read_in_order_with_unknowns(store) -> None:
    store.write({"a": LastFix(10.5, 52.0, 4.0, 3.0), "c": LastFix(30.25, 52.0, 4.0, None)},
                {"a": 11.0, "b": 22.0})
    seen, fix_times, _ = store.read_times(["c", "b", "a", "nobody"])
    assert seen == [None, 22.0, 11.0, None]
    assert fix_times == [30.25, None, 10.5, None]
    assert store.read_times([])[:2] == ([], [])


def test_times_of_more_devices_than_one_round_trip_carries(store) -> None:
    ids = [f"d{i}" for i in range(25_000)]
    store.write({}, {d: float(i) for i, d in enumerate(ids) if i % 7})
    seen, _, _ = store.read_times(ids)
    assert seen == [float(i) if i % 7 else None for i in range(25_000)]


def test_times_are_held_since_the_store_began(store) -> None:
    """The store says since when it holds the times it answers with: from its first read (its
    first start for the in-memory store), the same at every read after."""
    before = time.time()
    store.write({"a": LastFix(1.0, 52.0, 4.0, None)}, {"a": 2.0})
    since = store.read_times(["a"]).since
    assert since <= time.time()
    assert store.read_times([]).since == store.read_times(["a", "b"]).since == since
    if isinstance(store, RedisState):
        assert since >= before


@pytest.mark.parametrize("lost", ["last_seen", "last_fixes", "both"])
def test_times_lost_with_redis_are_held_since_the_loss(
        redis_client: redis.Redis, prefix: str, lost: str) -> None:
    """A hash that Redis lost (restarted without persistence, flushed, evicted) takes its
    beginning with it: the store holds its times from the next read after the loss on."""
    store = RedisState(redis_client, prefix)
    store.write({"a": LastFix(1.0, 52.0, 4.0, None)}, {"a": 2.0})
    first = store.read_times(["a"]).since
    time.sleep(0.01)
    lost_at = time.time()
    names = {"last_seen": [keys.last_seen(prefix)], "last_fixes": [keys.last_fixes(prefix)]}
    redis_client.delete(*names.get(lost, [*names["last_seen"], *names["last_fixes"]]))
    store.touch({"b": 3.0})  # written after the loss, before the next read
    since = store.read_times(["a", "b"]).since
    assert first < lost_at <= since <= time.time()
    assert store.read_times(["a"]).since == since


def test_the_times_and_their_beginning_are_one_round_trip(
        redis_client: redis.Redis, prefix: str) -> None:
    counting = CountingRoundTrips(redis_client)
    store = RedisState(counting, prefix)  # type: ignore[arg-type]
    store.read_times([f"d{i}" for i in range(10_000)])
    store.read_times([])
    assert counting.calls == 2


def test_batch_write_then_read(store) -> None:
    fixes = {f"d{i}": LastFix(100.0 + i, 52.0, 4.0 + i / 100, None if i % 2 else 5.0)
             for i in range(50)}
    seen = {f"d{i}": 200.0 + i for i in range(0, 50, 5)}
    zones = {"d7": {"z": {"status": "inside"}}}
    store.write(fixes, seen, zones)
    got = store.read_many([*fixes, "unknown"])
    assert (got.fixes, got.seen, got.zones) == (fixes, seen, zones)
    assert store.get_last_fix("d3") == fixes["d3"]
    assert store.last_seen("d5") == 205.0
    assert store.last_seen("d6") is None


def test_redis_layout_is_two_hashes(redis_client: redis.Redis, prefix: str) -> None:
    RedisState(redis_client, prefix).write({"d1": LastFix(1.0, 2.0, 3.0, 4.0)}, {"d1": 9.0})
    assert redis_client.hlen(keys.last_fixes(prefix)) == 1
    assert float(redis_client.hget(keys.last_seen(prefix), "d1")) == 9.0


def test_batch_is_one_round_trip_per_direction(redis_client: redis.Redis, prefix: str) -> None:
    """Whatever the batch size, a prefetch (a pipeline) and a flush (a script) are one round
    trip each."""
    counting = CountingRoundTrips(redis_client)
    pending = PendingState(RedisState(counting, prefix))  # type: ignore[arg-type]
    ids = [f"d{i}" for i in range(500)]
    pending.prefetch(ids)
    assert counting.calls == 1
    for device_id in ids:
        assert pending.get_last_fix(device_id) is None  # answered from the prefetch
        assert pending.last_seen(device_id) is None
        pending.set_last_fixes({device_id: LastFix(1.0, 52.0, 4.0, None)})
        pending.touch({device_id: 2.0})
    assert counting.calls == 1
    pending.flush()
    assert counting.calls == 2
    assert redis_client.hlen(keys.last_fixes(prefix)) == 500


def test_the_newest_fix_and_its_zone_states_win_whoever_writes_last(store) -> None:
    """Two fix workers flush the same device at once: the older write, coming last, changes
    neither the fix, nor the last-seen time, nor the zone states evaluated with that fix;
    zone states written without a fix (a contact-ban partner moved) are kept as written."""
    newer, older = LastFix(200.0, 52.0, 4.0, 5.0), LastFix(100.0, 51.0, 3.0, 5.0)
    inside, outside = {"zone-1": {"status": "inside"}}, {"zone-1": None}
    store.write({"d1": newer}, {"d1": 201.0}, {"d1": inside})
    store.write({"d1": older, "d2": older}, {"d1": 101.0, "d2": 101.0},
                {"d1": outside, "d2": inside, "d3": inside})
    got = store.read_many(["d1", "d2", "d3"])
    assert got.fixes == {"d1": newer, "d2": older}
    assert got.seen == {"d1": 201.0, "d2": 101.0}
    assert got.zones == {"d1": inside, "d2": inside, "d3": inside}
    store.write({"d1": newer}, {}, {"d1": outside})  # the same fix again: its states go
    store.write({}, {}, {"d3": outside})  # no fix with it: written as it comes
    assert store.read_many(["d1", "d3"]).zones == {}


def test_a_last_seen_time_ahead_of_the_clock_gives_way_to_the_next(store) -> None:
    """A node whose clock ran an hour ahead wrote the device's last-seen time; once it is put
    right, the next time written replaces it (newest wins would keep the future one for the hour,
    and the device would count as heard all that while). Within the tolerance newest still wins."""
    now = time.time()
    store.write({}, {"d1": now + 3_600, "d2": now + SEEN_AHEAD_S / 2})
    store.write({}, {"d1": now, "d2": now})
    assert store.read_many(["d1", "d2"]).seen == {"d1": now, "d2": now + SEEN_AHEAD_S / 2}


def test_an_unreadable_stored_fix_is_replaced(redis_client: redis.Redis, prefix: str) -> None:
    redis_client.hset(keys.last_fixes(prefix), "d1", b"junk")
    redis_client.hset(keys.last_seen(prefix), "d1", b"junk")
    state = RedisState(redis_client, prefix)
    state.write({"d1": LastFix(5.0, 52.0, 4.0, None)}, {"d1": 6.0}, {"d1": {"z": {"s": 1}}})
    got = state.read_many(["d1"])
    assert (got.fixes["d1"].tst, got.seen["d1"], got.zones["d1"]) == (5.0, 6.0, {"z": {"s": 1}})


def test_zone_states_are_kept_replaced_and_removed_when_idle(store) -> None:
    inside = {"zone-1": {"status": "inside", "last_tst": 5.0}}
    store.set_zone_states({"d1": inside, "d2": {"zone-2": {"status": "approaching"}}})
    store.write({}, {}, {"d2": {"zone-2": None}})  # idle everywhere: removed
    assert store.read_many(["d1", "d2"]).zones == {"d1": inside}
    store.set_zone_states({"d2": {"zone-2": None}})  # removing what is not there is no error
    assert store.read_many(["d1", "d2"]).zones == {"d1": inside}


def test_a_change_of_one_measure_keeps_the_devices_other_states(store) -> None:
    """A worker handling the victim's fix changes only the contact ban's state of the offender:
    it is merged into his states, and the zone's state another worker wrote with his own fix
    meanwhile is kept. A change that goes with a fix of the device still goes only with it."""
    ban, zone = {"status": "unknown", "last_tst": 1.5}, {"status": "inside", "last_tst": 2.5}
    store.write({"off": LastFix(1.0, 52.0, 4.0, 5.0)}, {}, {"off": {"ban": ban}})
    store.write({"off": LastFix(2.0, 52.0, 4.0, 5.0)}, {}, {"off": {"zone": zone}})
    assert store.read_many(["off"]).zones == {"off": {"ban": ban, "zone": zone}}
    store.set_zone_states({"off": {"ban": None}})  # the victim's fix, at another worker
    assert store.read_many(["off"]).zones == {"off": {"zone": zone}}
    store.write({"off": LastFix(1.5, 52.0, 4.0, 5.0)}, {}, {"off": {"zone": None}})  # older
    assert store.read_many(["off"]).zones == {"off": {"zone": zone}}
    store.set_zone_states({"off": {"ban": ban, "zone": None}})
    assert store.read_many(["off"]).zones == {"off": {"ban": ban}}


def test_merged_states_keep_every_digit_and_any_measure_id(redis_client: redis.Redis,
                                                           prefix: str) -> None:
    """The write script merges the states as JSON text, decoding no value: a time keeps every
    digit (decoded and encoded again in Redis it kept 14), and measure ids or values with
    quotes, backslashes, brackets or commas take nothing apart. A device's states as an
    earlier version wrote them are merged too; unreadable ones are replaced."""
    store = RedisState(redis_client, prefix)
    odd = {"status": "inside", "last_tst": 1_767_261_600.123_456_7, "held": 'a"},{"b\\'}
    ids = ["z", 'x"}', "{\\", "a,b:c", "é"]
    redis_client.hset(keys.zone_states(prefix), "d1", encode_zones({m: odd for m in ids}))
    redis_client.hset(keys.zone_states(prefix), "d2", b"not json")
    later = {**odd, "last_tst": 1_767_261_630.987_654_3, "pending_since": 1e-300}
    store.set_zone_states({"d1": {ids[1]: later, ids[2]: None, "new": later},
                           "d2": {"z": later}})
    got = store.read_many(["d1", "d2"]).zones
    assert got == {"d1": {"z": odd, ids[1]: later, ids[3]: odd, ids[4]: odd, "new": later},
                   "d2": {"z": later}}
    store.set_zone_states({"d1": {m: None for m in [*ids, "new"]}})
    assert redis_client.hexists(keys.zone_states(prefix), "d1") == 0


@pytest.mark.parametrize("junk", [b"", b"{", b"[]", b'{"zone-1": 3}', None])
def test_unreadable_zone_states_read_as_absent(junk: bytes | None) -> None:
    assert decode_zones(junk) is None
    assert decode_zones(encode_zones({"z": {"status": "inside"}})) == {"z": {"status": "inside"}}


def test_an_unreadable_entry_leaves_the_others(redis_client: redis.Redis, prefix: str) -> None:
    store = RedisState(redis_client, prefix)
    store.set_zone_states({"d1": {"z": {"status": "inside"}}})
    redis_client.hset(keys.zone_states(prefix), "d2", b"not json")
    assert store.read_many(["d1", "d2"]).zones == {"d1": {"z": {"status": "inside"}}}


def test_pending_state_is_seen_in_batch_and_stored_only_on_flush() -> None:
    shared = InMemoryState()
    pending = PendingState(shared)
    pending.prefetch(["d1"])
    pending.set_last_fixes({"d1": LastFix(5.0, 52.0, 4.0, 3.0)})
    pending.touch({"d1": 6.0})
    assert pending.get_last_fix("d1") == LastFix(5.0, 52.0, 4.0, 3.0)
    assert pending.last_seen("d1") == 6.0
    assert shared.get_last_fix("d1") is None
    pending.flush()
    assert shared.get_last_fix("d1") == LastFix(5.0, 52.0, 4.0, 3.0)
    assert shared.last_seen("d1") == 6.0


def test_pending_zone_states_reach_the_store_on_flush() -> None:
    shared = InMemoryState()
    pending = PendingState(shared)
    pending.set_zone_states({"d1": {"z": {"status": "inside"}}})
    assert shared.read_many(["d1"]).zones == {}
    pending.flush()
    assert shared.read_many(["d1"]).zones == {"d1": {"z": {"status": "inside"}}}


def test_what_a_flush_could_not_write_is_seen_and_written_with_the_next(
    redis_client: redis.Redis, prefix: str, caplog
) -> None:
    """Redis away during a flush: the view goes on answering with what it could not write
    (so a later fix of the device is not taken for its first), and writes it once Redis is
    back, with the newer batch's values where both have one."""
    reachable = RedisState(redis_client, prefix)
    unreachable = RedisState(unreachable_redis(), prefix)
    pending = PendingState(unreachable)
    pending.begin()
    pending.set_last_fixes({"d1": LastFix(5.0, 52.0, 4.0, 3.0), "d2": LastFix(6.0, 52.0, 4.0, 3.0)})
    pending.set_zone_states({"d1": {"z": {"status": "inside"}}})
    pending.flush()  # ingest goes on
    assert "2 last fixes, 1 zone states kept for the next batch" in caplog.text
    pending.begin()
    assert pending.get_last_fix("d1") == LastFix(5.0, 52.0, 4.0, 3.0)
    pending.store = reachable  # Redis is back
    assert pending.read_many(["d1", "d2"]).zones == {"d1": {"z": {"status": "inside"}}}
    pending.set_last_fixes({"d1": LastFix(7.0, 52.1, 4.1, 3.0)})
    pending.set_zone_states({"d1": {"z": None}})  # idle again
    pending.flush()
    assert reachable.read_many(["d1", "d2"]).fixes == {
        "d1": LastFix(7.0, 52.1, 4.1, 3.0), "d2": LastFix(6.0, 52.0, 4.0, 3.0)}
    assert reachable.read_many(["d1"]).zones == {}
    pending.flush()  # nothing left to write
    assert redis_client.hlen(keys.last_fixes(prefix)) == 2


def test_a_batch_begun_again_forgets_what_the_failed_try_wrote() -> None:
    shared = InMemoryState()
    shared.set_last_fixes({"d1": LastFix(5.0, 52.0, 4.0, 3.0)})
    pending = PendingState(shared)
    pending.begin()
    pending.prefetch(["d1"])
    pending.set_last_fixes({"d1": LastFix(9.0, 52.0, 4.0, 3.0)})
    pending.set_zone_states({"d1": {"z": {"status": "inside"}}})
    pending.begin()  # the try was not stored: handled again
    assert pending.get_last_fix("d1") == LastFix(5.0, 52.0, 4.0, 3.0)
    got = pending.read_many(["d1"])
    assert got.fixes == {"d1": LastFix(5.0, 52.0, 4.0, 3.0)} and got.zones == {}


def test_the_view_reads_this_batch_over_the_store() -> None:
    shared = InMemoryState()
    shared.write({"d1": LastFix(5.0, 52.0, 4.0, 3.0)}, {"d1": 5.5},
                 {"d1": {"z": {"status": "inside"}}, "d2": {"z": {"status": "inside"}}})
    pending = PendingState(shared)
    pending.begin()
    pending.set_zone_states({"d1": {"z": None}, "d3": {"z": {"status": "approaching"}}})
    pending.touch({"d1": 8.0})
    got = pending.read_many(["d1", "d2", "d3"])
    assert got.fixes == {"d1": LastFix(5.0, 52.0, 4.0, 3.0)} and got.seen == {"d1": 8.0}
    assert got.zones == {"d2": {"z": {"status": "inside"}},
                         "d3": {"z": {"status": "approaching"}}}


def test_the_view_merges_the_changes_of_a_batch_and_of_earlier_ones(redis_client, prefix):
    """Messages of one batch change different measures of a device, a flush that failed left
    changes of a third: the view answers with all of them over the store's, and the next flush
    writes all of them."""
    reachable = RedisState(redis_client, prefix)
    reachable.set_zone_states({"off": {"kept": {"s": 0}, "gone": {"s": 0}}})
    pending = PendingState(RedisState(unreachable_redis(), prefix))
    pending.begin()
    pending.set_zone_states({"off": {"a": {"s": 1}}})
    pending.flush()  # Redis away: kept for the next batch
    pending.store = reachable
    pending.begin()
    pending.set_zone_states({"off": {"b": {"s": 2}, "gone": None}})
    pending.set_zone_states({"off": {"c": {"s": 3}}})
    want = {"off": {"kept": {"s": 0}, "a": {"s": 1}, "b": {"s": 2}, "c": {"s": 3}}}
    assert pending.read_many(["off"]).zones == want
    pending.flush()
    assert reachable.read_many(["off"]).zones == want


def test_reading_through_the_view_with_the_store_away_raises() -> None:
    """Unknown is not absent: a caller that would act on "absent" is told the store is away."""
    pending = PendingState(RedisState(unreachable_redis(), "sw"))
    pending.begin()
    with pytest.raises(redis.RedisError):
        pending.read_many(["d1"])
    pending.prefetch(["d1"])  # logged, not raised
    assert pending.get_last_fix("d1") is None


def test_zone_states_for_an_unreachable_store_are_logged_not_raised(caplog) -> None:
    unreachable = RedisState(unreachable_redis(), "sw")
    pending = PendingState(unreachable)
    pending.set_zone_states({"d1": {"z": {"status": "inside"}}})
    pending.flush()  # ingest goes on
    assert "0 last fixes, 1 zone states kept for the next batch" in caplog.text


def test_an_upgrade_carries_the_earlier_key_names_over(redis_client: redis.Redis,
                                                      prefix: str) -> None:
    """A store written by the version before the hash tag keeps its devices' last fixes and
    zone states; what this version already wrote (newer) is kept over the old."""
    old_fix, old_seen, old_zones = keys.untagged(prefix)
    fix = LastFix(100.0, 51.9, 4.5, 8.0)
    redis_client.hset(old_fix, mapping={"d1": encode_fix(fix), "d2": encode_fix(fix)})
    redis_client.hset(old_seen, "d1", "100.0")
    redis_client.hset(old_zones, "d1", encode_zones({"m1": {"status": "inside"}}))
    store = RedisState(redis_client, prefix)
    newer = LastFix(200.0, 52.0, 4.6, 5.0)
    store.write({"d2": newer}, {})  # a process of this version was first for d2

    assert store.carry_over() == [old_fix, old_seen, old_zones]
    got = store.read_many(["d1", "d2"])
    assert got.fixes == {"d1": fix, "d2": newer}
    assert got.seen == {"d1": 100.0}
    assert got.zones == {"d1": {"m1": {"status": "inside"}}}
    assert not redis_client.exists(old_fix, old_seen, old_zones)
    assert store.carry_over() == []  # once: every process runs it at start


def test_carrying_over_keeps_each_devices_newest_fix_with_its_own_zone_states(
        redis_client: redis.Redis, prefix: str) -> None:
    """Device by device, newest wins: an old fix does not come back over a newer one, nor do
    its zone states over the newer fix's (none: idle everywhere); an old fix newer than this
    version's (a process of the earlier version still running during the upgrade) comes over
    with its states, and the later last-seen time is kept."""
    old_fix, old_seen, old_zones = keys.untagged(prefix)
    inside = {"m1": {"status": "inside"}}
    redis_client.hset(old_fix, mapping={"d1": encode_fix(LastFix(100.0, 51.9, 4.5, 8.0)),
                                        "d2": encode_fix(LastFix(300.0, 52.1, 4.7, 5.0))})
    redis_client.hset(old_seen, mapping={"d1": "100.0", "d2": "300.0"})
    redis_client.hset(old_zones, mapping={"d1": encode_zones(inside),
                                          "d2": encode_zones(inside)})
    store = RedisState(redis_client, prefix)
    newer = LastFix(200.0, 52.0, 4.6, 5.0)
    store.write({"d1": newer, "d2": newer}, {"d1": 200.0, "d2": 200.0},
                {"d1": {}, "d2": {}})  # this version evaluated both: idle

    store.carry_over()

    got = store.read_many(["d1", "d2"])
    assert got.fixes == {"d1": newer, "d2": LastFix(300.0, 52.1, 4.7, 5.0)}
    assert got.zones == {"d2": inside}
    assert got.seen == {"d1": 200.0, "d2": 300.0}


def test_carrying_over_from_an_unreachable_store_is_logged_not_raised(caplog) -> None:
    assert RedisState(unreachable_redis(), "sw").carry_over() == []
    assert "state store not carried over" in caplog.text


@pytest.mark.parametrize("junk", [None, b"", b"1", b"1 2 3", b"a b"])
def test_unreadable_clock_readings_read_as_absent(junk: bytes | None) -> None:
    assert decode_clock(junk) is None
    reading = ClockReading(1_795_000_000.25, -3.5)
    assert decode_clock(encode_clock(reading)) == reading


def test_the_clock_reading_received_last_wins_whoever_writes_last(store) -> None:
    """A device's clock readings, written by two workers out of order: the one received later
    is kept; one written ahead of the clock gives way to the next."""
    now = time.time()
    newer, older = ClockReading(now, 7_200.0), ClockReading(now - 30, 0.0)
    store.set_clocks({"d1": newer})
    store.write({}, {}, None, {"d1": older, "d2": older})
    store.set_clocks({"d3": ClockReading(now + 3_600, 1.0)})
    store.set_clocks({"d3": ClockReading(now, 2.0)})
    assert store.get_clock("d1") == newer and store.get_clock("nobody") is None
    assert store.read_many(["d1", "d2", "d3"]).clocks == {
        "d1": newer, "d2": older, "d3": ClockReading(now, 2.0)}


def test_pending_clock_readings_are_seen_in_batch_and_stored_on_flush() -> None:
    shared = InMemoryState()
    shared.set_clocks({"d1": ClockReading(1.0, 0.0)})
    pending = PendingState(shared)
    pending.prefetch(["d1", "d2"])
    assert pending.get_clock("d1") == ClockReading(1.0, 0.0)
    pending.set_clocks({"d2": ClockReading(2.0, 60.0)})
    assert pending.get_clock("d2") == ClockReading(2.0, 60.0)
    assert pending.read_many(["d2"]).clocks == {"d2": ClockReading(2.0, 60.0)}
    assert shared.get_clock("d2") is None
    pending.flush()
    assert shared.get_clock("d2") == ClockReading(2.0, 60.0)


def test_positions_past_the_retention_are_forgotten(store) -> None:
    old, new = LastFix(1_000.0, 51.9, 4.5, 8.0), LastFix(5_000.0, 52.0, 4.6, 5.0)
    store.write({"gone": old, "kept": new, "heard": old},
                {"gone": 1_000.0, "kept": 5_000.0, "heard": 5_000.0},
                {"gone": {"m1": {"status": "inside"}}, "kept": {"m1": {"status": "inside"}}})

    assert store.forget_fixes_before(2_000.0) == 2  # "gone", and "heard", which sent no fix

    got = store.read_many(["gone", "kept", "heard"])
    assert got.fixes == {"kept": new}
    assert got.zones == {"kept": {"m1": {"status": "inside"}}}
    assert got.seen == {"kept": 5_000.0, "heard": 5_000.0}  # still heard: not a position
    assert store.forget_fixes_before(2_000.0) == 0


def test_a_forgotten_device_loses_its_old_clock_reading(store) -> None:
    old = LastFix(1_000.0, 51.9, 4.5, 8.0)
    store.write({"gone": old, "heard": old}, {}, None,
                {"gone": ClockReading(1_000.0, 0.0), "heard": ClockReading(5_000.0, 0.0)})
    assert store.forget_fixes_before(2_000.0) == 2
    assert store.read_many(["gone", "heard"]).clocks == {"heard": ClockReading(5_000.0, 0.0)}


def test_forgetting_scans_a_large_store_in_steps(redis_client: redis.Redis, prefix: str) -> None:
    store = RedisState(redis_client, prefix)
    store.write({f"d{i}": LastFix(float(i), 51.9, 4.5, None) for i in range(2_500)}, {})
    assert store.forget_fixes_before(2_000.0) == 2_000
    assert redis_client.hlen(keys.last_fixes(prefix)) == 500

"""The background fleet's fixes: each one a ping of its own for the worker, however late the
load generator's tick."""

from __future__ import annotations

import random

from device_protocol import codec
from loadtests.fleet import FixMaker, FleetDevice

DEVICES = [FleetDevice(f"fl-{k}", 51.9 + k / 100, 4.4 + k / 100) for k in range(10)]


def test_a_late_tick_gives_every_fix_a_device_and_fix_time_of_its_own():
    maker = FixMaker(DEVICES, random.Random(7))
    now = 1_800_000_000.0
    # A tick 150 ms late at 200 fixes/s: 30 fixes at one `now`, three for each device.
    fixes = [maker.next(now) for _ in range(30)]
    keys = {(DEVICES[i].device_id, fix.tst) for i, fix in fixes}
    assert len(keys) == 30
    assert {i for i, _ in fixes} == set(range(10))
    # Fix times stay at or after `now`, a device's in the order it sent them, and survive the
    # wire: the worker reads the fix times sent.
    for k in range(10):
        times = [fix.tst for i, fix in fixes if i == k]
        assert times == sorted(times) and times[0] >= now
        assert len({codec.decode_fixes(codec.encode(f))[0].tst for i, f in fixes if i == k}) == 3


def test_on_time_fixes_carry_their_time_and_round_robin_the_fleet():
    maker = FixMaker(DEVICES, random.Random(7))
    first, _ = maker.next(1_800_000_000.0)
    later = [maker.next(1_800_000_000.0 + 0.1 * (n + 1)) for n in range(10)]
    assert [i for i, _ in later] == [(first + 1 + n) % 10 for n in range(10)]
    assert [fix.tst for _, fix in later] == [1_800_000_000.0 + 0.1 * (n + 1) for n in range(10)]


def test_the_same_seed_makes_the_same_fleet():
    a, b = FixMaker(DEVICES, random.Random(3)), FixMaker(DEVICES, random.Random(3))
    assert [a.next(1_800_000_000.0) for _ in range(25)] == [
        b.next(1_800_000_000.0) for _ in range(25)]

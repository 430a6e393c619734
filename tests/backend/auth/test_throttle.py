"""Failed console sign-ins: free at first, then each failure doubles the wait; counted per
address and name and per address alone, never per name alone (an IPv6 address by its /64);
kept in the process or in Redis (every API instance sees them); a Redis that fails lets the
sign-in through."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.auth.throttle import (
    LoginThrottle,
    MemoryCounts,
    RedisCounts,
    client_subject,
    wait_s,
)
from backend.auth.users import add_user
from backend.settings import LoginSettings
from tests.backend.auth.test_sessions import PASSWORD
from tests.support.unreachable import unreachable_redis

SETTINGS = LoginSettings(free_failures=3, free_failures_per_address=10, max_wait_s=60,
                         forget_after_s=600)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_doubles_after_the_free_failures_up_to_its_limit() -> None:
    assert [wait_s(n, 3, 60) for n in range(10)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60]
    assert wait_s(10_000, 3, 60) == 60


@pytest.fixture(params=["memory", "redis"])
def counts(request):
    if request.param == "memory":
        yield MemoryCounts(), "sw"
        return
    client = request.getfixturevalue("redis_client")
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    yield RedisCounts(client), prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_failures_from_one_address_for_one_name_slow_down_its_next_try(counts) -> None:
    clock = Clock()
    throttle = LoginThrottle(counts[0], SETTINGS, counts[1], clock=clock)
    for _ in range(3):
        assert throttle.begin("10.0.0.1", "desk") == 0  # checked, and counted until it succeeds

    assert throttle.wait_s("10.0.0.1", "desk") == 1
    assert throttle.wait_s("10.0.0.1", " Desk ") == 1  # the name as sign-in reads it
    assert throttle.wait_s("10.0.0.2", "desk") == 0  # the desk signs in from elsewhere
    assert throttle.wait_s("10.0.0.1", "other") == 0
    clock.now += 1
    assert throttle.begin("10.0.0.1", "desk") == 0
    assert throttle.wait_s("10.0.0.1", "desk") == 2

    throttle.succeeded("10.0.0.1", "desk")
    assert throttle.wait_s("10.0.0.1", "desk") == 0


def test_spraying_many_names_from_one_address_slows_it_down(counts) -> None:
    clock = Clock()
    throttle = LoginThrottle(counts[0], SETTINGS, counts[1], clock=clock)
    for i in range(10):
        throttle.begin("10.0.0.9", f"user{i}")
    assert throttle.wait_s("10.0.0.9", "someone-else") == 1
    assert throttle.wait_s("10.0.0.8", "someone-else") == 0


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64() -> None:
    assert client_subject("10.0.0.1") == "10.0.0.1"
    assert client_subject("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert client_subject("2001:DB8:1:2::1") == "2001:db8:1:2::/64"
    assert client_subject("fe80::1%eth0") == "fe80::/64"
    assert client_subject("::ffff:10.0.0.1") == "10.0.0.1"  # IPv4-mapped: the IPv4 client
    assert client_subject("testclient") == "testclient"  # no address: as given


def test_addresses_rotated_within_one_ipv6_64_are_one_client(counts) -> None:
    """A host picks any of its /64's addresses: a try from each new one is counted all the
    same, for one name and for the address alone; another /64 is another client."""
    clock = Clock()
    throttle = LoginThrottle(counts[0], SETTINGS, counts[1], clock=clock)
    for i in range(3):
        assert throttle.begin(f"2001:db8:1:2::{i + 1:x}", "desk") == 0
    assert throttle.begin("2001:db8:1:2:ffff:1:2:3", "desk") == 1
    assert throttle.wait_s("2001:db8:1:3::1", "desk") == 0

    for i in range(10):  # spraying names, a new address for each
        throttle.begin(f"2001:db8:9:9::{i + 1:x}", f"user{i}")
    assert throttle.wait_s("2001:db8:9:9::abcd", "someone-else") == 1

    for _ in range(3):  # an IPv4 client seen over IPv6 (a dual-stack socket) is that client
        throttle.begin("::ffff:10.0.0.7", "desk")
    assert throttle.wait_s("10.0.0.7", "desk") == 1


def test_counts_are_forgotten_after_a_quiet_while() -> None:
    clock = Clock()
    throttle = LoginThrottle(MemoryCounts(), SETTINGS, clock=clock)
    for _ in range(5):
        throttle.begin("10.0.0.1", "desk")
    clock.now += SETTINGS.forget_after_s + 1
    throttle.begin("10.0.0.1", "desk")
    assert throttle.wait_s("10.0.0.1", "desk") == 0  # one failure since: free again


def test_redis_forgets_a_count_itself_and_keeps_no_name(redis_client: redis.Redis) -> None:
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    LoginThrottle(RedisCounts(redis_client), SETTINGS, prefix).begin("10.0.0.1", "desk")
    stored = list(redis_client.scan_iter(f"{prefix}:*"))
    try:
        assert len(stored) == 2
        assert all(0 < redis_client.ttl(k) <= SETTINGS.forget_after_s for k in stored)
        assert not any(b"desk" in k or b"10.0.0.1" in k for k in stored)
    finally:
        redis_client.delete(*stored)


def test_a_redis_that_fails_lets_the_sign_in_through(caplog) -> None:
    throttle = LoginThrottle(RedisCounts(unreachable_redis()), SETTINGS)
    throttle.begin("10.0.0.1", "desk")
    assert throttle.wait_s("10.0.0.1", "desk") == 0
    throttle.succeeded("10.0.0.1", "desk")
    assert "not throttled" in caplog.text


def _try(client: TestClient, password: str):
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/console/login", data={"username": "desk", "password": password,
                                                "csrf": csrf}, follow_redirects=False)


def test_the_console_refuses_to_check_a_password_while_its_sender_must_wait(stack,
                                                                         caplog) -> None:
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    rt = stack.runtime
    rt.settings.console.secure_cookies = False
    rt.login_throttle.begin("10.9.9.9", "someone")
    if rt.redis is not None:  # with Redis configured the counts are every API instance's
        assert list(rt.redis.scan_iter(f"{rt.settings.redis.key_prefix}:login_failures:*"))
    clock = Clock()  # as the services' throttle, on a clock of the test's
    rt.login_throttle = LoginThrottle(RedisCounts(rt.redis) if rt.redis else MemoryCounts(),
                                      SETTINGS, rt.settings.redis.key_prefix, clock=clock)
    client = TestClient(create_app(rt), base_url="http://127.0.0.1")
    assert [_try(client, "wrong-password").status_code for _ in range(3)] == [401] * 3

    refused = _try(client, PASSWORD)  # the right one, but not checked

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "sw_session" not in refused.headers.get("set-cookie", "")
    assert 'id="throttled"' in refused.text
    assert client.get("/console/", follow_redirects=False).status_code == 303
    clock.now += 1
    caplog.set_level("INFO", logger="backend.console.views")
    assert _try(client, PASSWORD).status_code == 303  # signed in: the count is cleared
    assert "console sign-in user=" in caplog.text and "desk" not in caplog.text
    assert rt.login_throttle.wait_s("testclient", "desk") == 0


def test_a_try_counts_from_the_moment_it_may_be_checked(counts) -> None:
    """`begin` decides and counts in one step: three free failures let three tries through,
    the fourth waits; a try that succeeds is taken back (its name's count cleared, one failure
    off its address's)."""
    clock = Clock()
    throttle = LoginThrottle(counts[0], SETTINGS, counts[1], clock=clock)
    assert [throttle.begin("10.0.0.1", "desk") for _ in range(4)] == [0, 0, 0, 1]
    clock.now += 1
    assert throttle.begin("10.0.0.1", "desk") == 0
    throttle.succeeded("10.0.0.1", "desk")
    assert throttle.wait_s("10.0.0.1", "desk") == 0
    for i in range(5):  # four tries of the address's ten remain free for other names
        assert throttle.begin("10.0.0.1", f"user{i}") == 0


def test_guesses_sent_at_once_are_checked_one_by_one(stack) -> None:
    """Sixteen guesses at the same moment: each reads the count and is counted in one step, so
    after the one free failure every other one waits (before, all sixteen were checked). The
    throttle's clock stands still: on a busy machine the 32 requests outlast the first wait."""
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    rt = stack.runtime
    rt.settings.console.secure_cookies = False
    one_free = LoginSettings(free_failures=1, free_failures_per_address=1_000, max_wait_s=900,
                             forget_after_s=600)
    rt.login_throttle = LoginThrottle(RedisCounts(rt.redis) if rt.redis else MemoryCounts(),
                                      one_free, rt.settings.redis.key_prefix, clock=Clock())
    with TestClient(create_app(rt), base_url="http://127.0.0.1") as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"',
                         client.get("/console/login").text).group(1)

        def guess(i: int) -> int:
            return client.post("/console/login", data={
                "username": "desk", "password": f"guess-{i:04d}", "csrf": csrf},
                follow_redirects=False).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(guess, range(32)))
    assert sorted(codes) == [401] + [429] * 31

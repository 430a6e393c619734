"""The webhook client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend.police import signing
from backend.police.attempt import ErrorKind
from backend.police.client import (
    Timeouts,
    Urllib3WebhookSender,
    WebhookSender,
)
from backend.police.resolve import BoundedResolver
from backend.police.retry import Verdict, classify

from .conftest import Receiver
from .test_signing import spec_verify

BODY = b'{"specversion":"1.0","id":"a/1"}'
FAST = Timeouts(connect_s=1.0, read_s=0.3, write_s=1.0)


@pytest.fixture
def sender() -> Iterator[Urllib3WebhookSender]:
    with Urllib3WebhookSender(FAST) as sender:
        yield sender


def test_200_is_delivered_with_body_and_signed_headers(
    sender: Urllib3WebhookSender, receiver: Receiver
) -> None:
    secret = signing.new_secret()
    headers = {
        "content-type": "application/cloudevents+json",
        **signing.sign(secret, "msg_d-1_1", int(time.time()), BODY),
    }
    as_protocol: WebhookSender = sender
    result = as_protocol.send(receiver.url("/ok"), BODY, headers)
    assert result.status == 200 and result.error is None
    assert result.duration_ms > 0
    assert classify(result) is Verdict.DELIVERED
    [request] = receiver.requests
    assert request.body == BODY
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["user-agent"].startswith("Schildwacht")
    assert spec_verify(secret, request.headers, request.body)


def test_503_is_retried_with_retry_after(sender: Urllib3WebhookSender, receiver: Receiver) -> None:
    result = sender.send(receiver.url("/unavailable"), BODY, {})
    assert result.status == 503
    assert result.retry_after_s == 7.0
    assert classify(result) is Verdict.RETRY


def test_429_http_date_retry_after_is_converted(
    sender: Urllib3WebhookSender, receiver: Receiver
) -> None:
    result = sender.send(receiver.url("/busy"), BODY, {})
    assert result.status == 429
    assert result.retry_after_s is not None and result.retry_after_s > 86_400
    assert classify(result) is Verdict.RETRY


def test_400_gives_up(sender: Urllib3WebhookSender, receiver: Receiver) -> None:
    result = sender.send(receiver.url("/bad"), BODY, {})
    assert result.status == 400
    assert classify(result) is Verdict.GIVE_UP


def test_redirects_are_not_followed(sender: Urllib3WebhookSender, receiver: Receiver) -> None:
    result = sender.send(receiver.url("/moved"), BODY, {})
    assert result.status == 307
    assert [r.path for r in receiver.requests] == ["/moved"]
    assert classify(result) is Verdict.GIVE_UP


def test_slow_receiver_times_out(sender: Urllib3WebhookSender, receiver: Receiver) -> None:
    result = sender.send(receiver.url("/slow"), BODY, {})
    assert result.status is None
    assert result.error is ErrorKind.TIMEOUT
    assert result.detail == "ReadTimeout"
    # the read timeout (0.3 s) ended the attempt, not the receiver's late answer (3 s)
    assert result.duration_ms < receiver.slow_s * 1000
    assert classify(result) is Verdict.RETRY


TOTAL = Timeouts(connect_s=1.0, read_s=0.3, write_s=1.0, total_s=1.0)


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_total_timeout(
    receiver: Receiver,
) -> None:
    """One byte every 0.1 s never trips the read timeout (0.3 s); the whole answer would take
    25 s. The attempt ends at its total timeout (1 s), as a timeout to retry."""
    started = time.monotonic()
    with Urllib3WebhookSender(TOTAL) as sender:
        result = sender.send(receiver.url("/trickle"), BODY, {})
    elapsed = time.monotonic() - started
    assert (result.status, result.error, result.detail) == (None, ErrorKind.TIMEOUT,
                                                            "TotalTimeout")
    assert 1.0 <= elapsed < 2.5, elapsed
    assert 1000.0 <= result.duration_ms < 2500.0
    assert classify(result) is Verdict.RETRY


def test_the_total_timeout_holds_on_a_kept_alive_connection(receiver: Receiver) -> None:
    """The second attempt reuses the first one's connection; the deadline ends it all the
    same, and the connection it shut down serves no later attempt."""
    with Urllib3WebhookSender(TOTAL, pool_size=1) as sender:
        first = sender.send(receiver.url("/ok"), BODY, {})
        started = time.monotonic()
        stuck = sender.send(receiver.url("/trickle"), BODY, {})
        elapsed = time.monotonic() - started
        after = sender.send(receiver.url("/ok"), BODY, {})
    assert (first.status, stuck.error, after.status) == (200, ErrorKind.TIMEOUT, 200)
    assert elapsed < 2.5, elapsed
    assert [r.path for r in receiver.requests] == ["/ok", "/trickle", "/ok"]


def test_a_quick_answer_is_not_cut_off_by_an_earlier_attempts_deadline(
    receiver: Receiver,
) -> None:
    """Deadlines of attempts that ended leave their (kept-alive) connection alone."""
    with Urllib3WebhookSender(Timeouts(read_s=1.0, total_s=0.5), pool_size=1) as sender:
        results = []
        for _ in range(4):
            results.append(sender.send(receiver.url("/ok"), BODY, {}))
            time.sleep(0.2)
    assert [r.status for r in results] == [200] * 4


def test_closed_port_is_a_connection_error(
    sender: Urllib3WebhookSender, closed_port: int
) -> None:
    result = sender.send(f"http://127.0.0.1:{closed_port}/ok", BODY, {})
    assert result.status is None
    assert result.error is ErrorKind.CONNECT
    assert classify(result) is Verdict.RETRY


def test_a_long_answer_is_cut_off_and_the_next_attempt_still_works(receiver: Receiver) -> None:
    with Urllib3WebhookSender(FAST, max_response_bytes=4096) as sender:
        long = sender.send(receiver.url("/big"), BODY, {})
        after = sender.send(receiver.url("/ok"), BODY, {})
    assert (long.status, long.error) == (200, None)
    assert (after.status, after.error) == (200, None)
    assert [r.path for r in receiver.requests] == ["/big", "/ok"]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http://", "not a url"])
def test_unusable_url_gives_up(sender: Urllib3WebhookSender, url: str) -> None:
    result = sender.send(url, BODY, {})
    assert result.error is ErrorKind.INVALID_REQUEST
    assert classify(result) is Verdict.GIVE_UP


def test_the_total_timeout_is_a_setting_and_ends_within_the_claim_lease() -> None:
    from pydantic import ValidationError

    from backend.settings import PoliceSettings
    from backend.subscriptions.wiring import timeouts

    assert timeouts(PoliceSettings()).total_s == 10.0
    assert timeouts(PoliceSettings(total_timeout_s=3.0)).total_s == 3.0
    with pytest.raises(ValidationError, match="total_timeout_s"):
        PoliceSettings(total_timeout_s=30.0, claim_lease_s=30.0)


class HangingLookup:
    """A system resolver that never answers until released (as one whose servers are gone
    does for up to half a minute)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, family: int, type: int) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        self.release.wait(30)
        return socket.getaddrinfo("127.0.0.1", port, family, type)


def test_a_hanging_lookup_ends_the_attempt_as_a_timeout(receiver: Receiver) -> None:
    """The lookup runs in a thread of the resolver's: the attempt gives up on it within its
    time (connect timeout 0.3 s, total 1 s) while the lookup still hangs."""
    lookup = HangingLookup()
    timeouts = Timeouts(connect_s=0.3, read_s=0.3, write_s=0.3, total_s=1.0)
    try:
        with Urllib3WebhookSender(timeouts, resolver=BoundedResolver(lookup)) as sender:
            result = sender.send(f"http://hook.invalid:{receiver.port}/ok", BODY, {})
            assert not lookup.release.is_set()  # it returned while the lookup hung
    finally:
        lookup.release.set()
    assert lookup.asked == ["hook.invalid"]
    assert result.error is ErrorKind.TIMEOUT and result.status is None
    assert classify(result) is Verdict.RETRY
    assert receiver.requests == []


def test_every_address_of_the_host_is_tried_in_turn(
    sender: Urllib3WebhookSender, receiver: Receiver
) -> None:
    """The first address refuses (nothing listens on 127.0.0.2), the second answers; the
    request still names the host it was sent to."""

    def lookup(host: str, port: int, family: int, type: int) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    with Urllib3WebhookSender(FAST, resolver=BoundedResolver(lookup)) as named:
        result = named.send(f"http://police-hook.test:{receiver.port}/ok", BODY, {})
    assert (result.status, result.error) == (200, None)
    [request] = receiver.requests
    assert request.headers["host"] == f"police-hook.test:{receiver.port}"


def test_an_unknown_host_is_a_connection_error(sender: Urllib3WebhookSender) -> None:
    def lookup(host: str, port: int, family: int, type: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with Urllib3WebhookSender(FAST, resolver=BoundedResolver(lookup)) as named:
        result = named.send("http://no-such-host.test/ok", BODY, {})
    assert result.error is ErrorKind.CONNECT
    assert classify(result) is Verdict.RETRY


def test_localhost_is_looked_up_by_the_system_resolver(receiver: Receiver) -> None:
    with Urllib3WebhookSender(FAST) as sender:
        result = sender.send(f"http://localhost:{receiver.port}/ok", BODY, {})
    assert (result.status, result.error) == (200, None)

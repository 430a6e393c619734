"""Bounded name resolution for webhook attempts."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from backend.police.resolve import BoundedResolver, ResolveTimeout, addresses, is_address


def test_addresses_keep_the_answers_order_without_repeats() -> None:
    infos = [(socket.AF_INET6, 1, 6, "", ("::1", 443, 0, 0)),
             (socket.AF_INET, 1, 6, "", ("127.0.0.1", 443)),
             (socket.AF_INET, 2, 17, "", ("127.0.0.1", 443))]
    assert addresses(infos) == ["::1", "127.0.0.1"]


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", True), ("[::1]", True), ("::1", True), ("hooks.politie.test", False),
    ("localhost", False), ("", False),
])
def test_is_address(host: str, address: bool) -> None:
    assert is_address(host) is address


def test_with_every_thread_hanging_a_further_lookup_times_out_in_the_queue() -> None:
    release = threading.Event()
    asked: list[str] = []

    def lookup(host: str, port: int, family: int, type: int) -> list[tuple[Any, ...]]:
        asked.append(host)
        release.wait(30)
        return [(socket.AF_INET, type, 6, "", ("127.0.0.1", port))]

    resolver = BoundedResolver(lookup, threads=1)
    try:
        with pytest.raises(ResolveTimeout):
            resolver.resolve("first.test", 443, socket.AF_UNSPEC, 0.05)
        with pytest.raises(ResolveTimeout):
            resolver.resolve("second.test", 443, socket.AF_UNSPEC, 0.05)
        assert asked == ["first.test"]  # the second never reached the one hanging thread
        release.set()
        assert resolver.resolve("third.test", 443, socket.AF_UNSPEC, 5.0) == ["127.0.0.1"]
    finally:
        release.set()
        resolver.close()
    assert "second.test" not in asked  # cancelled while queued

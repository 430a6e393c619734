"""Name resolution for webhook attempts, within the attempt's time.

`getaddrinfo` blocks its thread until the system's resolver answers or gives up (with its own
timeouts and retries, up to half a minute), and no socket exists yet that the attempt's
deadline (`backend.police.deadline`) could shut down: a hanging resolver held the attempt, and
the delivery it was claimed for, past its claim lease. Here a lookup runs in a small pool of
threads of its own and the attempt waits for it at most until its connect timeout or its
deadline, whichever comes first; past that the attempt fails as a connect timeout and the
delivery policy retries it. A lookup that never returns holds one thread of the pool, never
the attempt; when every thread of the pool hangs, later lookups wait in its queue and time
out the same way.

The sender sets the resolver for the thread making an attempt (`set_current`), as it does the
deadline; its pool's connections use it when they open (`backend.police.client`).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

# socket.getaddrinfo's signature: (host, port, family, type) -> [(family, type, proto, name, addr)]
Lookup = Callable[[str, int, int, int], list[tuple[Any, ...]]]

_local = threading.local()


class ResolveTimeout(Exception):
    """The lookup did not answer within the time the attempt had for it."""


def is_address(host: str) -> bool:
    """Whether `host` is an IP address already (nothing to look up)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def addresses(infos: list[tuple[Any, ...]]) -> list[str]:
    """The distinct addresses of a `getaddrinfo` answer, in its order (its preference)."""
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class BoundedResolver:
    """Looks names up in at most `threads` threads, each lookup waited for at most as long as
    the caller says."""

    def __init__(self, lookup: Lookup = socket.getaddrinfo, threads: int = 4) -> None:
        self._lookup = lookup
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-dns")

    def resolve(self, host: str, port: int, family: int, wait_s: float) -> list[str]:
        """The addresses of `host`, or `ResolveTimeout` after `wait_s`; the lookup's own error
        (`socket.gaierror`: no such host) as it is."""
        future = self._pool.submit(self._lookup, host, port, family, socket.SOCK_STREAM)
        try:
            return addresses(future.result(timeout=max(wait_s, 0.0)))
        except FutureTimeout:
            future.cancel()  # still queued: never runs; running: its thread finishes alone
            raise ResolveTimeout(host) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def current() -> BoundedResolver | None:
    return getattr(_local, "resolver", None)


def set_current(resolver: BoundedResolver | None) -> None:
    _local.resolver = resolver

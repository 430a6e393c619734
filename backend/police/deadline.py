"""A total time limit for each webhook attempt.

urllib3's timeouts bound each socket operation, not the attempt: a receiver that sends one byte
of its answer every second never trips a read timeout of 2 s, and holds the attempt (and the
thread making it) as long as it likes. Here every attempt gets an `AttemptDeadline` from a
`Watchdog`, one thread per sender: at the deadline the watchdog shuts the socket of the
attempt's connection down, which makes a blocked send or receive fail at once, and the sender
reports a timeout.

The connection of an attempt is found through the thread that makes it: the sender sets the
thread's current deadline (`current`), and the connection classes of the sender's pool attach
themselves to it when they connect and when they send a request (`attach_current`).
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any

_local = threading.local()


def _shut(conn: Any) -> None:
    """Shut the connection's socket down (the plain socket's call, also for TLS: it only ends
    the stream, whichever thread blocks on it)."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # closed or never connected: nothing blocks on it
        pass


class AttemptDeadline:
    """The end of one attempt (`at`, on the monotonic clock). Once `finish` has returned, the
    connection is never touched again: it may go back to the pool."""

    def __init__(self, at: float) -> None:
        self.at = at
        self._lock = threading.Lock()
        self._conn: Any = None
        self._expired = False
        self._done = False

    @property
    def expired(self) -> bool:
        return self._expired

    def attach(self, conn: Any) -> None:
        """The attempt uses `conn`: shut down at the deadline (at once when it has passed)."""
        with self._lock:
            if self._done:
                return
            self._conn = conn
            if self._expired:
                _shut(conn)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._expired = True
            if self._conn is not None:
                _shut(self._conn)

    def finish(self) -> bool:
        """The attempt is over; True when it ran into its deadline."""
        with self._lock:
            self._done = True
            self._conn = None
            return self._expired


def current() -> AttemptDeadline | None:
    return getattr(_local, "deadline", None)


def set_current(deadline: AttemptDeadline | None) -> None:
    _local.deadline = deadline


def attach_current(conn: Any) -> None:
    """Called by a connection of the sender's pool in the thread making the attempt."""
    deadline = current()
    if deadline is not None:
        deadline.attach(conn)


class Watchdog:
    """Expires deadlines as they fall due, in one daemon thread started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, AttemptDeadline]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def watch(self, timeout_s: float) -> AttemptDeadline:
        deadline = AttemptDeadline(time.monotonic() + timeout_s)
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()  # sooner than what the thread waits for
        return deadline

    def _run(self) -> None:
        with self._cond:
            while not self._closing:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _at, _n, deadline = heapq.heappop(self._heap)
                deadline.expire()  # a finished attempt's deadline does nothing

    def close(self) -> None:
        """Stop the thread; attempts still running are ended. `watch` starts it again."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._closing = True
            pending, self._heap = self._heap, []
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=5)
        for _at, _n, deadline in pending:
            deadline.expire()
        with self._cond:
            self._closing = False

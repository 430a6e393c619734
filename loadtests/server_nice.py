"""The benchmark's PostgreSQL server at the alarm worker's niceness for the run.

An alarm's raise waits for its database backend. A backend is a process of the server (the
postmaster's child, forked per connection), and runs at the server's niceness: at 0 on this
machine, behind the API at -5 and beside the fix worker's backends, while the alarm worker that
waits for it runs at -10. The README ("Running it for real") recommends running a server that
shares the machine with the alarm worker at its niceness, as the broker; this applies that to
the local server for the run: the postmaster (so that backends forked meanwhile inherit it)
and every process it has now, and puts back what each had when the run ends.

Only a server on this machine can be reniced (the benchmark's database is on 127.0.0.1); the
backend of a connection of ours names its postmaster (its parent). Raising priority needs
CAP_SYS_NICE: without it the run goes on at the server's niceness and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
import psycopg

log = logging.getLogger(__name__)


@dataclass
class Reniced:
    """What `server_at` did: the server's niceness during the run, or why it stayed."""

    nice: int | None = None
    reason: str = ""
    # pid -> niceness before the run, of every process changed.
    before: dict[int, int] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.nice}" if self.nice is not None else f"unchanged ({self.reason})"


def postmaster_pid(dsn: str) -> int:
    """The pid of the postmaster serving `dsn`, on this machine (the parent of our backend)."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return psutil.Process(backend).ppid()


def _processes(postmaster: psutil.Process) -> list[psutil.Process]:
    return [postmaster, *postmaster.children(recursive=True)]


def _put_back(done: Reniced, postmaster: psutil.Process, nice: int) -> None:
    """Each changed process back to its niceness; a backend forked during the run (it
    inherited `nice`) to the postmaster's."""
    restore_to = done.before.get(postmaster.pid, 0)
    try:
        alive = _processes(postmaster)
    except psutil.Error:
        return  # the server is gone: nothing of it to put back
    for proc in alive:
        try:
            if proc.pid in done.before:
                proc.nice(done.before[proc.pid])
            elif proc.nice() == nice:
                proc.nice(restore_to)
        except psutil.Error:  # a backend that ended meanwhile
            continue


@contextmanager
def server_at(dsn: str, nice: int) -> Iterator[Reniced]:
    """Run the block with the PostgreSQL server of `dsn` at niceness `nice`."""
    try:
        pid = postmaster_pid(dsn)
    except (psycopg.Error, psutil.Error) as exc:
        yield Reniced(reason=f"server process not found: {type(exc).__name__}")
        return
    with tree_at(pid, nice) as done:
        yield done


@contextmanager
def tree_at(pid: int, nice: int) -> Iterator[Reniced]:
    """Run the block with process `pid` and its descendants at niceness `nice` (those it forks
    meanwhile inherit it); afterwards each is put back."""
    done = Reniced()
    try:
        root = psutil.Process(pid)
        for proc in _processes(root):
            try:
                previous = proc.nice()
                proc.nice(nice)
                done.before[proc.pid] = previous
            except psutil.NoSuchProcess:
                continue
        done.nice = nice
    except psutil.AccessDenied:
        done.reason = "needs CAP_SYS_NICE"
        log.warning("PostgreSQL server not at niceness %d: %s", nice, done.reason)
    except psutil.NoSuchProcess:
        done.reason = "server process gone"
        yield done
        return
    try:
        yield done
    finally:
        _put_back(done, root, nice)

"""Telling the service manager how a worker is: ready, alive, stopping (systemd's notify
protocol, sd_notify(3)), and the watchdog that says "alive" only while the worker's own health
check passes.

Under a unit with `Type=notify` and `WatchdogSec=`, systemd passes the socket to write to
(`NOTIFY_SOCKET`) and the watchdog's period (`WATCHDOG_USEC`); a worker that stops saying
WATCHDOG=1 within that period is killed and started again. An ingest worker whose thread is
stuck restarts this way, and the broker hands it again what it had not acknowledged: no alarm
is lost with the stuck worker. Without those variables (tests, a shell, another manager)
nothing is sent. The protocol is one datagram per message on a Unix socket; a few lines here
rather than a dependency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Mapping

from backend.periodic import Periodic

log = logging.getLogger(__name__)


def notify(message: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send one notification (e.g. "READY=1"); False when no service manager listens or the
    socket cannot be written (never raised: the worker goes on)."""
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("service manager not notified (%s)", exc.strerror or type(exc).__name__)
        return False
    return True


def watchdog_interval_s(env: Mapping[str, str] = os.environ) -> float | None:
    """How often to say "alive": half the watchdog's period, as sd_watchdog_enabled(3)
    advises; None without a watchdog for this process."""
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        period_s = int(usec) / 1e6
    except ValueError:
        return None
    return period_s / 2 if period_s > 0 else None


class Watchdog(Periodic):
    """Says WATCHDOG=1 every `interval_s` while `problems()` finds none; logs what it finds
    otherwise, and stays silent, so that the service manager restarts the process."""

    name = "watchdog"

    def __init__(self, problems: Callable[[], list[str]], interval_s: float,
                 send: Callable[[str], bool] = notify) -> None:
        self._problems = problems
        self.interval_s = interval_s
        self._send = send

    def run_once(self) -> bool:
        """One check: True when it said "alive"."""
        try:
            found = self._problems()
        except Exception:  # noqa: BLE001 - a failing check is a problem, not a crash
            log.exception("health check failed")
            found = ["the health check itself failed"]
        if found:
            log.error("not healthy, the watchdog is not told: %s", "; ".join(found))
            return False
        return self._send("WATCHDOG=1")


@contextlib.contextmanager
def supervised(problems: Callable[[], list[str]],
               env: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Around a service's main wait: READY=1 at once, WATCHDOG=1 while `problems()` finds
    none (when the manager keeps a watchdog), STOPPING=1 when it ends."""
    notify("READY=1", env)
    interval = watchdog_interval_s(env)
    watchdog = None
    if interval is not None:
        watchdog = Watchdog(problems, interval, lambda m: notify(m, env))
        watchdog.start()
    try:
        yield
    finally:
        notify("STOPPING=1", env)
        if watchdog is not None:
            watchdog.stop()

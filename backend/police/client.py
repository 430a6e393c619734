"""The webhook HTTP client: POST a signed body, return an `AttemptResult`.

The only module of the package that sends (its lookups run in `backend.police.resolve`) and the
only place that sees urllib3 types: a response or exception becomes an `AttemptResult` here and
nowhere else. The backend depends on the `WebhookSender` protocol so tests and the embedded mode
can swap in a fake.

Every attempt runs under explicit connect and read timeouts and a total time limit (a receiver
that trickles its answer byte by byte is cut off there: `backend.police.deadline`; a lookup of
the host waits at most until then too: `backend.police.resolve`), never follows redirects, is
never retried by the client itself (the delivery policy decides) and reads at most
`max_response_bytes` of the response body (then drops the connection). `Urllib3WebhookSender`
is synchronous (use it from a worker thread), for the alarm path: a POST to a local receiver
took 0.45-0.5 ms with it back to back and 1.1-1.4 ms after a 100 ms pause, against 0.6 and
1.7 ms with httpx. Logs carry the URL's host and the outcome, never the body, headers or
secret.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family

from backend.police import deadline, resolve
from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.retry import parse_retry_after

log = logging.getLogger(__name__)

USER_AGENT = "Schildwacht-Webhooks/1"


class WebhookSender(Protocol):
    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 2.0
    read_s: float = 5.0
    write_s: float = 5.0
    total_s: float = 10.0  # the whole attempt: connect, send, and read the answer

    def to_urllib3(self) -> urllib3.Timeout:
        """urllib3 has no write timeout: the read timeout bounds every socket operation after
        the connect. There is no pool timeout either: the pool never blocks (a busy pool opens
        another connection)."""
        return urllib3.Timeout(connect=self.connect_s, read=max(self.read_s, self.write_s))


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _host(url: str) -> str:
    try:
        return parse_url(url).host or "?"
    except ValueError:  # urllib3's LocationParseError
        return "?"


def _log(url: str, result: AttemptResult) -> None:
    log.info(
        "webhook attempt host=%s status=%s error=%s duration_ms=%.1f",
        _host(url),
        result.status,
        result.error,
        result.duration_ms,
    )


def total_timeout(duration_ms: float) -> AttemptResult:
    return AttemptResult(None, duration_ms, error=ErrorKind.TIMEOUT, detail="TotalTimeout")


class _Watched:
    """A connection that attaches itself to the attempt's deadline (`backend.police.deadline`),
    so that its socket is shut down when the attempt runs out of time, and looks its host up
    within that time (`backend.police.resolve`)."""

    def connect(self) -> None:
        deadline.attach_current(self)  # shut down from when it has a socket ...
        super().connect()  # type: ignore[misc]
        deadline.attach_current(self)  # ... and at once when the deadline passed meanwhile

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline.attach_current(self)  # a kept-alive connection, reused
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        """Connect to each address of the host in turn, as urllib3 does, but with the lookup
        bounded by the connect timeout and the attempt's deadline. urllib3 connects to
        `_dns_host`; `host` (the Host header, TLS's server name) is read from it only after the
        socket is open, by when it is the name again."""
        name: str = self._dns_host  # type: ignore[attr-defined]
        resolver = resolve.current()
        if resolver is None or resolve.is_address(name):
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        connect_s = self.timeout  # type: ignore[attr-defined]
        wait = float(connect_s) if isinstance(connect_s, int | float) else Timeouts.connect_s
        if (limit := deadline.current()) is not None:
            wait = min(wait, limit.at - time.monotonic())
        port: int = self.port  # type: ignore[attr-defined]
        try:
            found = resolver.resolve(name, port, allowed_gai_family(), wait)
        except resolve.ResolveTimeout:
            raise ConnectTimeoutError(self, f"looking up {name} timed out") from None
        except socket.gaierror as exc:
            raise NameResolutionError(name, self, exc) from exc  # type: ignore[arg-type]
        error: Exception = NameResolutionError(  # type: ignore[arg-type]
            name, self, socket.gaierror(socket.EAI_NONAME, "no address"))
        for address in found:
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc, no-any-return]
            except (ConnectTimeoutError, NewConnectionError) as exc:
                error = exc
            finally:
                self._dns_host = name
        raise error


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def from_urllib3_exception(exc: Exception, duration_ms: float) -> AttemptResult:
    """A urllib3 exception as an attempt result (the error kind decides retry or give up). The
    detail names the failure as httpx would (attempts stored before the switch to urllib3 read
    the same)."""
    if isinstance(exc, NewConnectionError):  # refused, unreachable, no such host
        kind, detail = ErrorKind.CONNECT, "ConnectError"
    elif isinstance(exc, ConnectTimeoutError):
        kind, detail = ErrorKind.TIMEOUT, "ConnectTimeout"
    elif isinstance(exc, Urllib3Timeout):
        kind, detail = ErrorKind.TIMEOUT, "ReadTimeout"
    elif isinstance(exc, ValueError):  # urllib3's: not a URL, no host, not http(s)
        kind, detail = ErrorKind.INVALID_REQUEST, "InvalidURL"
    else:  # the connection broke, a malformed response
        kind, detail = ErrorKind.TRANSPORT, type(exc).__name__
    return AttemptResult(None, duration_ms, error=kind, detail=detail)


class Urllib3WebhookSender:
    """Synchronous sender on one `urllib3.PoolManager`: up to `pool_size` connections kept alive
    per receiver (more are opened when more sends run at once, and closed after). Close it (or
    use `with`) when done."""

    def __init__(
        self,
        timeouts: Timeouts = Timeouts(),
        *,
        max_response_bytes: int = 64 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pool_size: int = 8,
        resolver: resolve.BoundedResolver | None = None,
    ) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=32, maxsize=pool_size, block=False, timeout=timeouts.to_urllib3(),
            retries=False,
        )
        self._pool.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                             "https": _WatchedHTTPSPool}
        self._total_s = timeouts.total_s
        self._watchdog = deadline.Watchdog()
        self._resolver = resolver or resolve.BoundedResolver()
        self._max_response_bytes = max_response_bytes
        self._clock = clock

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.perf_counter()
        limit = self._watchdog.watch(self._total_s)
        deadline.set_current(limit)
        resolve.set_current(self._resolver)
        try:
            result = self._post(url, body, headers, started, limit)
        except (Urllib3Error, ValueError, OSError) as exc:
            # Past the deadline the watchdog ended the attempt, whatever error that made.
            elapsed = _elapsed_ms(started)
            result = (total_timeout(elapsed) if limit.finish()
                      else from_urllib3_exception(exc, elapsed))
        finally:
            limit.finish()
            deadline.set_current(None)
            resolve.set_current(None)
        _log(url, result)
        return result

    def _post(self, url: str, body: bytes, headers: Mapping[str, str],
              started: float, limit: deadline.AttemptDeadline) -> AttemptResult:
        resp = self._pool.request(
            "POST", url, body=body, headers={"user-agent": USER_AGENT, **headers},
            redirect=False, retries=False, preload_content=False,
        )
        read_to_end = False
        try:
            read = 0
            for chunk in resp.stream(16 * 1024, decode_content=False):
                read += len(chunk)
                if read > self._max_response_bytes:
                    break
            else:
                read_to_end = True
            return AttemptResult(
                resp.status,
                _elapsed_ms(started),
                retry_after_s=parse_retry_after(resp.headers.get("retry-after"), self._clock()),
                detail=resp.reason or None,
            )
        finally:
            # Read to the end, the connection goes back to the pool; with a rest unread, after
            # an error or when the deadline shut it down, it is dropped. The deadline is done
            # with it before it can serve another attempt.
            if limit.finish() or not read_to_end:
                resp.close()
            else:
                resp.release_conn()

    def close(self) -> None:
        self._pool.clear()
        self._watchdog.close()
        self._resolver.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

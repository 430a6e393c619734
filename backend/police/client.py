"""The webhook HTTP client: POST a signed body, return an `AttemptResult`.

The only module of the package that does I/O and the only place that sees httpx types: a
response or exception becomes an `AttemptResult` here and nowhere else. The backend depends on
the `WebhookSender` protocol so tests and the embedded mode can swap in a fake.

Every attempt runs under explicit connect/read/write/pool timeouts, never follows redirects and
reads at most `max_response_bytes` of the response body (then drops it). `HttpxWebhookSender` is
synchronous (use it from a worker thread); `AsyncHttpxWebhookSender` is the asyncio twin.
Logs carry the URL's host and the outcome, never the body, headers or secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

import httpx

from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.retry import parse_retry_after

log = logging.getLogger(__name__)

USER_AGENT = "Schildwacht-Webhooks/1"


class WebhookSender(Protocol):
    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult: ...


class AsyncWebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float = 2.0
    read_s: float = 5.0
    write_s: float = 5.0
    pool_s: float = 1.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s
        )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def from_exception(exc: Exception, duration_ms: float) -> AttemptResult:
    """An httpx exception as an attempt result (the error kind decides retry or give up)."""
    if isinstance(exc, httpx.TimeoutException):
        kind = ErrorKind.TIMEOUT
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        kind = ErrorKind.INVALID_REQUEST
    elif isinstance(exc, httpx.ConnectError):
        kind = ErrorKind.CONNECT
    else:
        kind = ErrorKind.TRANSPORT
    return AttemptResult(None, duration_ms, error=kind, detail=type(exc).__name__)


def from_response(response: httpx.Response, duration_ms: float, now: datetime) -> AttemptResult:
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    return AttemptResult(
        response.status_code,
        duration_ms,
        retry_after_s=retry_after,
        detail=response.reason_phrase or None,
    )


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


def _log(url: str, result: AttemptResult) -> None:
    log.info(
        "webhook attempt host=%s status=%s error=%s duration_ms=%.1f",
        _host(url),
        result.status,
        result.error,
        result.duration_ms,
    )


class HttpxWebhookSender:
    """Synchronous sender on one pooled `httpx.Client`; close it (or use `with`) when done."""

    def __init__(
        self,
        timeouts: Timeouts = Timeouts(),
        *,
        max_response_bytes: int = 64 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            timeout=timeouts.to_httpx(),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
        )
        self._max_response_bytes = max_response_bytes
        self._clock = clock

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.perf_counter()
        try:
            with self._client.stream("POST", url, content=body, headers=dict(headers)) as resp:
                read = 0
                for chunk in resp.iter_raw():
                    read += len(chunk)
                    if read > self._max_response_bytes:
                        break
                result = from_response(resp, _elapsed_ms(started), self._clock())
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            result = from_exception(exc, _elapsed_ms(started))
        _log(url, result)
        return result

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncHttpxWebhookSender:
    """The asyncio twin of `HttpxWebhookSender` on one `httpx.AsyncClient`."""

    def __init__(
        self,
        timeouts: Timeouts = Timeouts(),
        *,
        max_response_bytes: int = 64 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeouts.to_httpx(),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
        )
        self._max_response_bytes = max_response_bytes
        self._clock = clock

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with self._client.stream(
                "POST", url, content=body, headers=dict(headers)
            ) as resp:
                read = 0
                async for chunk in resp.aiter_raw():
                    read += len(chunk)
                    if read > self._max_response_bytes:
                        break
                result = from_response(resp, _elapsed_ms(started), self._clock())
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            result = from_exception(exc, _elapsed_ms(started))
        _log(url, result)
        return result

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

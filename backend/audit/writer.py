"""Audit entries written behind the console stream, in a thread of their own.

A console frame that carries a position is audited right after it is sent. Written in the
stream's own loop, that write (a transaction and its commit) held up every frame queued behind
it: the next alarm waited for the previous alarm's audit. `AuditWriter` takes the entries off the
stream, keeps their order and writes whatever has queued up in one transaction.

Nothing is dropped: when the queue is full, `submit` says so and the caller writes the entries
itself. A batch whose transaction fails is written again entry by entry, so that one entry the
database refuses cannot take the others with it; entries that fail are retried with bounded
back-off (written after those behind them, with the time they are written), and entries that
still cannot be written are logged by id (as a failed audit always was), never silently lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from backend.audit.log import LocationRead, record
from backend.auth.tokens import Principal

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.1, 0.5, 2.0)
BATCH_MAX = 200


@dataclass(frozen=True, slots=True)
class Reads:
    """Location reads of one principal on one channel, to audit together."""

    who: Principal
    reads: list[LocationRead]
    channel: str
    reason: str | None = None


class AuditWriter:
    def __init__(self, sessions: sessionmaker[Session], max_pending: int = 10_000) -> None:
        self._sessions = sessions
        self._queue: queue.Queue[Reads | None] = queue.Queue(max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, who: Principal, reads: list[LocationRead], *, channel: str,
               reason: str | None = None) -> bool:
        """Queue the reads for the writer thread (started on first use). False when the queue
        is full or the writer has stopped: then the caller must write them itself."""
        if not reads:
            return True
        if self._stop.is_set():
            return False
        self._ensure_started()
        try:
            self._queue.put_nowait(Reads(who, list(reads), channel, reason))
        except queue.Full:
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None)  # wakes the thread; everything before it is written first
        thread.join(timeout_s)
        if thread.is_alive():
            log.error("audit writer did not finish within %.0fs; pending=%d", timeout_s,
                      self.pending)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            stopping = first is None
            while len(batch) < BATCH_MAX and not stopping:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[Reads]) -> None:
        """Write the batch in one transaction; if that fails, entry by entry, so that an entry
        that cannot be written (a value the column refuses) costs only itself. Entries that
        failed are tried again with back-off, then logged by id."""
        error = self._try(batch)
        if error is None:
            return
        log.warning("audit write of %d items failed (%s): entry by entry", len(batch), error)
        pending = [entry for item in batch for entry in _entries(item)]
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            pending = [entry for entry in pending if self._try([entry]) is not None]
            if not pending or delay is None:
                break
            log.warning("audit write of %d entries failed, attempt %d; retry in %.1fs",
                        len(pending), attempt + 1, delay)
            time.sleep(delay)
        for entry in pending:  # the gap is in the log, by id (never a position)
            read = entry.reads[0]
            log.error("audit of %s position failed actor=%s %s=%s", entry.channel,
                      entry.who.ref, read.resource, read.resource_id)

    def _try(self, batch: list[Reads]) -> str | None:
        """Write the entries in one transaction: None once committed, else the error's type."""
        try:
            with self._sessions.begin() as s:
                for item in batch:
                    record(s, item.who, item.reads, reason=item.reason, channel=item.channel)
        except Exception as exc:  # whatever an entry holds, the writer lives on
            return type(exc).__name__
        return None


def _entries(item: Reads) -> list[Reads]:
    """The item as one `Reads` per audit entry."""
    return [Reads(item.who, [read], item.channel, item.reason) for read in item.reads]

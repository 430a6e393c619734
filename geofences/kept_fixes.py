"""The fixes kept of one device under a contact ban, for the buffered batches of its partner.

A device under a contact ban may be met, minutes later, by a batch of fixes its partner
buffered in a coverage gap; each of those is compared with this device's fix of its time.
So the engine keeps about an hour of such a device's fixes, thinned to about one a minute.
At 100,000 devices and their bans that is a worker's largest per-device memory after the
measures: here each fix is six doubles in two flat arrays (48 bytes), not a tuple of six
float objects (about 250 bytes).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterator

# (tst, x, y, accuracy_m, lon, lat): the engine's `DeviceFix`
Fix = tuple[float, float, float, float, float, float]

_REST = 5  # the values of a fix after its time


class KeptFixes:
    """A device's kept fixes, oldest first, at most `limit` of them."""

    __slots__ = ("_limit", "_rest", "_times")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a device keeps at least one fix")
        self._limit = limit
        self._times = array("d")
        self._rest = array("d")

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[Fix]:
        return (self[i] for i in range(len(self._times)))

    def nbytes(self) -> int:
        """The bytes this device's kept fixes take: the object and its two arrays."""
        return sys.getsizeof(self) + sys.getsizeof(self._times) + sys.getsizeof(self._rest)

    def __getitem__(self, i: int) -> Fix:
        if i < 0:
            i += len(self._times)
        if not 0 <= i < len(self._times):
            raise IndexError("no kept fix at this position")
        x, y, acc, lon, lat = self._rest[i * _REST:(i + 1) * _REST]
        return (self._times[i], x, y, acc, lon, lat)

    def remember(self, fix: Fix, *, spacing_s: float, history_s: float) -> None:
        """Keep `fix`, a fix newer than every kept one. While it is at most `spacing_s` after the
        one before the last, it replaces the last (so one is kept about every `spacing_s`);
        fixes older than `history_s` before it, and the oldest beyond `limit`, are dropped."""
        times, rest = self._times, self._rest
        tst = fix[0]
        if len(times) >= 2 and tst - times[-2] <= spacing_s:
            times[-1] = tst
            n = len(rest)
            rest[n - 5], rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1] = fix[1:]
        else:
            times.append(tst)
            rest.extend(fix[1:])
        if times[0] < tst - history_s or len(times) > self._limit:
            old = max(bisect_left(times, tst - history_s), len(times) - self._limit)
            del times[:old]
            del rest[:old * _REST]

    def near(self, at: float, max_age_s: float) -> Fix | None:
        """The kept fix nearest in time to `at`, if it is within `max_age_s` of it."""
        times = self._times
        i = bisect_left(times, at)
        best = min((j for j in (i - 1, i) if 0 <= j < len(times)),
                   key=lambda j: abs(at - times[j]), default=None)
        if best is None or abs(at - times[best]) > max_age_s:
            return None
        return self[best]

    def drop_from(self, tst: float) -> None:
        """Drop the kept fixes not older than `tst` (a fix adopted from another engine is
        kept in their place)."""
        keep = bisect_left(self._times, tst)
        del self._times[keep:]
        del self._rest[keep * _REST:]

"""What the watchdog hears of an ingest worker beyond its own threads' heartbeats. Pure.

paho's network thread is not ours and shows no heartbeat, but it raises alarms and hands
messages on: while it waits on the database (a connection gone half-open) or for room in a
queue, no alarm is read, no PUBACK and no MQTT keepalive is sent, and the broker ends the
session. So it notes what it is busy with and since when, and a wait longer than
`process.stuck_after_s` is a problem (`IngestWorker.problems`): the service manager restarts
the worker, with new connections.

The follow-up thread shows progress each time it tries a failed follow-up again, so a
follow-up that keeps failing is told apart here: once it has failed for longer than the bound
while raises commit (the database takes writes, so it is not away), the follow-ups of every
other alert wait behind it; a restarted worker leaves them to the follow-up sweep, which tries
each alone.
"""

from __future__ import annotations

# What paho's network thread is busy with, and since when (`time.monotonic`).
Busy = tuple[str, float]


def network_thread_problem(busy: Busy | None, now: float, limit_s: float) -> str | None:
    """The network thread stuck in what it is busy with for longer than `limit_s`, or None."""
    if busy is None:
        return None
    what, since = busy
    busy_s = now - since
    if busy_s <= limit_s:
        return None
    return f"the MQTT network thread has been {what} for {busy_s:.0f} s"


def follow_up_problem(started: float | None, committed_at: float | None, now: float,
                      limit_s: float) -> str | None:
    """A follow-up begun at `started` and not done (tried again after each failure) for longer
    than `limit_s`, while something was committed after it began (`committed_at`), or None.
    With the database away nothing commits: that is not the worker's problem (it tries again;
    a restart would change nothing)."""
    if started is None or now - started <= limit_s:
        return None
    if committed_at is None or committed_at <= started:
        return None
    return (f"a follow-up has not been done for {now - started:.0f} s while alerts are "
            "committed")

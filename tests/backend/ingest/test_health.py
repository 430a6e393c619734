"""A worker knows when it is stuck: a thread of its own that shows no progress for
`process.stuck_after_s`, or one that ended, is a problem for the watchdog; one that waits for
work or tries again is not."""

from __future__ import annotations

from device_protocol import Fix, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


def test_a_stuck_lane_is_found_and_recovers(stack) -> None:
    stack.register("vic-health")
    worker = stack.worker
    stack.runtime.settings.process.stuck_after_s = 2.0  # the others show progress every 0.2 s
    assert worker.problems() == []

    with worker.fixes.busy:  # the fix lane takes a batch and cannot handle it
        publish(stack.device("vic-health"), stack.topics.loc("vic-health"),
                codec.encode(Fix(tst=1_790_000_000, lat=51.92, lon=4.48, acc=5)))
        stuck = wait_until(worker.problems, timeout=10)
        assert any("thread ingest-other showed no progress" in p for p in stuck)

    wait_until(lambda: worker.problems() == [], timeout=10)


def test_a_stopped_worker_has_ended_threads(stack) -> None:
    stack.worker.stop()
    found = stack.worker.problems()
    assert "thread ingest-alarm ended" in found and "thread ingest-other ended" in found
    assert "the MQTT network thread ended" in found

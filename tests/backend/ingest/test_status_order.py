"""Status reports stored out of order (workers sharing the subscription each store what they
took) do not overwrite a newer one: a Last Will received before the device came back online,
stored after, leaves the device online. The Last Will marks a device offline but is no report
of the device's; anything the device sends afterwards marks it online again."""

from __future__ import annotations

import time

from sqlalchemy import select

from backend.devices.models import Device
from backend.pipeline.context import RawMessage
from device_protocol import Status, codec
from tests.support.waiting import wait_until


def _status(stack, device_id: str, status: Status, received_at: float) -> RawMessage:
    return RawMessage(stack.topics.status(device_id), codec.encode(status), 0, 0, received_at)


def _device(stack, device_id: str) -> Device:
    with stack.runtime.sessions() as s:
        return s.scalar(select(Device).where(Device.id == device_id))


def test_an_older_report_stored_later_changes_nothing(stack):
    stack.register("off-601", role="offender")
    lane, now = stack.worker.fixes, time.time()
    back_online = _status(stack, "off-601", Status(tst=now, online=True, batt=80), now)
    last_will = _status(stack, "off-601", Status(online=False), now - 1)
    later = _status(stack, "off-601", Status(tst=now + 2, online=False, batt=79), now + 2)
    with lane.busy:
        assert stack.worker.handle(lane, [back_online])
        assert stack.worker.handle(lane, [last_will])  # received first, stored second
        device = _device(stack, "off-601")
        assert (device.online, device.battery) == (True, 80)
        assert stack.worker.handle(lane, [later])  # a newer report still counts
    device = _device(stack, "off-601")
    assert (device.online, device.battery) == (False, 79)


def test_a_report_stored_by_a_clock_ahead_gives_way_to_the_next(stack):
    """A worker whose clock ran an hour ahead stored a report (tamper) at a time in the future;
    once its clock is put right, the device's reports count again at once, not an hour later."""
    stack.register("off-602", role="offender")
    lane, now = stack.worker.fixes, time.time()
    ahead = _status(stack, "off-602", Status(tst=now, tamper=True), now + 3_600)
    right = _status(stack, "off-602", Status(tst=now + 5, tamper=False), now + 5)
    with lane.busy:
        assert stack.worker.handle(lane, [ahead])
        assert stack.worker.handle(lane, [right])
    assert _device(stack, "off-602").tamper is False


def _loc(stack, device_id: str, tst: float) -> RawMessage:
    payload = b'{"tst":%f,"lat":51.9,"lon":4.4}' % tst
    return RawMessage(stack.topics.loc(device_id), payload, 0, 0, tst)


def test_after_its_last_will_a_device_is_online_again_with_its_next_fix_or_report(stack):
    stack.register("vic-603")
    lane, now = stack.worker.fixes, time.time()
    with lane.busy:
        assert stack.worker.handle(lane, [_loc(stack, "vic-603", now - 10)])
        assert stack.worker.handle(lane, [_status(stack, "vic-603", Status(online=False), now)])
        device = _device(stack, "vic-603")
        assert device.online is False and device.last_status_at is None  # no report of its own
        assert stack.runtime.state.last_seen("vic-603") == now - 10  # nor a contact
        assert stack.worker.handle(lane, [_loc(stack, "vic-603", now + 5)])
        assert _device(stack, "vic-603").online is True
        assert stack.worker.handle(lane, [_status(stack, "vic-603", Status(online=False),
                                                  now + 6)])
        assert stack.worker.handle(lane, [_status(stack, "vic-603", Status(tst=now + 7, batt=50),
                                                  now + 7)])
    assert (_device(stack, "vic-603").online, _device(stack, "vic-603").battery) == (True, 50)
    with lane.busy:
        assert stack.worker.handle(lane, [_status(stack, "vic-603", Status(online=False),
                                                  now + 8)])
    assert _device(stack, "vic-603").online is False
    alarm = RawMessage(stack.topics.alarm("vic-603"), b'{"id":"a-1"}', 0, 0, now + 9)
    with stack.worker.alarms.busy:
        assert stack.worker.handle(stack.worker.alarms, [alarm])
    wait_until(lambda: _device(stack, "vic-603").online is True)  # in the alarm's follow-up

"""The pipeline's decisions, without broker or database: a dict-backed device directory and the
in-memory state store stand in for the real ones."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from backend.devices.directory import DeviceInfo
from backend.pipeline.context import RawMessage
from backend.pipeline.pipeline import build_pipeline
from backend.pipeline.steps import _FOREIGN_KEYS
from backend.settings import ProtocolSettings
from backend.state.store import InMemoryState, LastFix

NOW = 1_795_000_000.0
CASE = uuid.uuid4()


class FakeDirectory:
    def __init__(self, *devices: DeviceInfo) -> None:
        self._by_id = {d.id: d for d in devices}
        self.owntracks = {("anna", "phone"): "vic-001"}
        self.rows: dict[str, DeviceInfo] = {}  # the database's rows, where they differ
        self.reread_ids: list[str] = []

    def get(self, device_id):
        return self._by_id.get(device_id)

    def reread(self, device_id):
        self.reread_ids.append(device_id)
        return self.rows.get(device_id, self._by_id.get(device_id))

    def by_owntracks(self, user, device):
        device_id = self.owntracks.get((user, device))
        return self._by_id.get(device_id) if device_id else None


def device(device_id="vic-001", role="victim", active=True, exercise=False) -> DeviceInfo:
    return DeviceInfo(device_id, CASE, role, active, 60, "C-1", "RE07", exercise)


def make(state=None, *devices):
    state = state or InMemoryState()
    directory = FakeDirectory(*(devices or (device(),)))
    return build_pipeline(ProtocolSettings(), directory, state), state


def raw(topic: str, payload: bytes, at: float = NOW) -> RawMessage:
    return RawMessage(topic, payload, 1, 1, at)


def test_alarm_becomes_a_draft_with_its_own_fix():
    pipeline, _ = make()
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm",
                           b'{"id":"a1","tst":1795000000,"lat":51.9,"lon":4.4,"acc":7}'))
    [draft] = ctx.alerts
    assert (draft.type, draft.message_id, draft.location_source) == ("panic", "a1", "alarm")
    assert (draft.lat, draft.lon, draft.acc, draft.fix_time) == (51.9, 4.4, 7, NOW)
    assert draft.flags == [] and draft.case_id == CASE


def test_alarm_kinds_map_to_alert_types_and_test_is_flagged():
    pipeline, _ = make()
    for kind in ("fall", "tamper", "test"):
        body = f'{{"id":"{kind}","kind":"{kind}"}}'.encode()
        ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", body))
        assert ctx.alerts[0].type == kind
    assert "test" in ctx.alerts[0].flags


def test_exercise_case_marks_the_draft():
    pipeline, _ = make(None, device(exercise=True))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", b'{"id":"x"}'))
    assert ctx.alerts[0].exercise is True


def test_late_alarm_keeps_device_time_but_uses_it_for_the_fix():
    pipeline, _ = make()
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm",
                           b'{"id":"a","tst":1794999000,"lat":51.9,"lon":4.4}'))
    assert ctx.alerts[0].flags == ["late"] and ctx.alerts[0].fix_time == 1_794_999_000


def test_wild_clock_uses_server_time_for_the_fix():
    pipeline, _ = make()
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm",
                           b'{"id":"a","tst":1895000000,"lat":51.9,"lon":4.4}'))
    assert "clock_skew" in ctx.alerts[0].flags and ctx.alerts[0].fix_time == NOW


def test_out_of_order_fixes_are_stored_but_do_not_move_state():
    pipeline, state = make()
    newer = b'{"tst":1795000000,"lat":52.0,"lon":4.0}'
    older = b'{"tst":1794999900,"lat":51.0,"lon":5.0}'
    first = pipeline.run(raw("sd/v1/dev/vic-001/loc", newer))
    assert len(first.fresh_fixes) == 1
    second = pipeline.run(raw("sd/v1/dev/vic-001/loc", older))
    assert len(second.fixes) == 1 and second.fresh_fixes == []
    assert state.get_last_fix("vic-001") == LastFix(1795000000, 52.0, 4.0, None)


def test_batch_after_gap_moves_state_to_its_newest_fix():
    pipeline, state = make()
    batch = (b'{"fixes":[{"tst":1794999970,"lat":51.1,"lon":4.1},'
             b'{"tst":1794999910,"lat":51.0,"lon":4.0}]}')
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/loc", batch))
    assert [f.tst for f in ctx.fresh_fixes] == [1794999910, 1794999970]
    assert state.get_last_fix("vic-001").lat == 51.1


def test_future_fix_is_stored_but_not_state():
    pipeline, state = make()
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1795099000,"lat":51,"lon":4}'))
    assert len(ctx.fixes) == 1 and ctx.fresh_fixes == [] and "future_fix" in ctx.flags
    assert state.get_last_fix("vic-001") is None


def test_a_fix_dated_ahead_drives_state_as_dated_at_most_max_fix_ahead_s_ahead():
    """A clock glitch: one fix 290 s ahead (within `max_clock_skew_s`). It is stored with its
    own time but drives state as dated `max_fix_ahead_s` ahead, so the real fix after it is
    newer; before, it was the newest time, and every real fix until then not fresh."""
    pipeline, state = make()
    ahead = NOW + ProtocolSettings().max_fix_ahead_s
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1795000290,"lat":51,"lon":4}'))
    assert [f.tst for f in ctx.fixes] == [1795000290]  # stored as sent
    assert [f.tst for f in ctx.fresh_fixes] == [ahead] and "future_fix" not in ctx.flags
    assert state.get_last_fix("vic-001") == LastFix(ahead, 51, 4, None)
    later = pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1795000030,"lat":52,"lon":4}',
                             at=NOW + 30))
    assert [f.tst for f in later.fresh_fixes] == [1795000030]
    assert state.get_last_fix("vic-001").lat == 52


def test_fixes_of_a_batch_dated_ahead_drive_state_once():
    pipeline, _ = make()
    batch = (b'{"fixes":[{"tst":1795000005,"lat":51.1,"lon":4.1},'
             b'{"tst":1795000100,"lat":51.2,"lon":4.2},{"tst":1795000200,"lat":51.3,"lon":4.3}]}')
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/loc", batch))
    assert len(ctx.fixes) == 3
    assert [f.tst for f in ctx.fresh_fixes] == [NOW + 5, NOW + 10]


def test_owntracks_maps_to_the_registered_device():
    pipeline, state = make()
    ctx = pipeline.run(raw("owntracks/anna/phone",
                           b'{"_type":"location","lat":51.9,"lon":4.4,"tst":1795000000}'))
    assert ctx.rejection is None and ctx.device.id == "vic-001"
    assert state.get_last_fix("vic-001") is not None
    ignored = pipeline.run(raw("owntracks/anna/phone", b'{"_type":"lwt","tst":1795000000}'))
    assert ignored.ignored and ignored.rejection is None
    unknown = pipeline.run(raw("owntracks/bob/phone", b'{"_type":"location"}'))
    assert unknown.rejection.reason == "unknown_device"


def test_an_alarm_is_refused_only_on_its_devices_row_read_again():
    """The directory holds vic-001 inactive and knows no vic-002; the database has both active
    now. Their alarms are raised, each device read again; a fix keeps the directory's word (no
    read). A device the database too has inactive or not at all: refused."""
    directory = FakeDirectory(device(active=False), device("vic-003", active=False))
    directory.rows = {"vic-001": device(), "vic-002": device("vic-002")}
    pipeline = build_pipeline(ProtocolSettings(), directory, InMemoryState())
    fix = b'{"tst":1795000000,"lat":51.9,"lon":4.4}'

    assert pipeline.run(raw("sd/v1/dev/vic-001/loc", fix)).rejection.reason == "inactive_device"
    assert pipeline.run(raw("sd/v1/dev/vic-002/loc", fix)).rejection.reason == "unknown_device"
    assert directory.reread_ids == []
    for device_id in ("vic-001", "vic-002"):
        [draft] = pipeline.run(raw(f"sd/v1/dev/{device_id}/alarm", b'{"id":"a1"}')).alerts
        assert draft.device_id == device_id
    assert directory.reread_ids == ["vic-001", "vic-002"]
    inactive = pipeline.run(raw("sd/v1/dev/vic-003/alarm", b'{"id":"a1"}'))
    unknown = pipeline.run(raw("sd/v1/dev/vic-004/alarm", b'{"id":"a1"}'))
    assert (inactive.rejection.reason, unknown.rejection.reason) == (
        "inactive_device", "unknown_device")
    assert inactive.alerts == [] and unknown.alerts == []


def test_status_with_tamper_raises_a_deduplicable_tamper_draft():
    pipeline, _ = make(None, device("off-001", role="offender"))
    payload = b'{"tst":1795000000,"tamper":true,"batt":40}'
    one = pipeline.run(raw("sd/v1/dev/off-001/status", payload))
    two = pipeline.run(raw("sd/v1/dev/off-001/status", payload))
    assert one.alerts[0].type == "tamper" and one.alerts[0].while_none_open
    assert one.alerts[0].message_id == two.alerts[0].message_id
    calm = pipeline.run(raw("sd/v1/dev/off-001/status", b'{"tst":1795000001,"tamper":false}'))
    assert calm.alerts == [] and calm.status.tamper is False


def test_rejections_stop_the_pipeline_early():
    pipeline, state = make()
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1795000000,"lat":99,"lon":4}'))
    assert ctx.rejection.reason == "invalid_payload" and ctx.fixes == []
    assert state.get_last_fix("vic-001") is None
    downlink = pipeline.run(raw("sd/v1/dev/vic-001/ack", b"{}"))
    assert downlink.rejection.reason == "invalid_topic"


def test_pending_state_reaches_the_store_only_on_flush():
    from backend.state.store import PendingState

    store = InMemoryState()
    pending = PendingState(store)
    pipeline, _ = make(pending)
    pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1795000000,"lat":52.0,"lon":4.0}'))
    assert pending.get_last_fix("vic-001").lat == 52.0  # later messages of the batch see it
    # A crash now loses nothing: the redelivery evaluates it again.
    assert store.get_last_fix("vic-001") is None
    pending.flush()
    assert store.get_last_fix("vic-001").lat == 52.0


def test_old_alarm_from_a_device_in_coverage_is_a_wrong_clock_not_late():
    state = InMemoryState()
    pipeline, _ = make(state)
    # The device reports live, but its clock runs two hours behind.
    state.touch({"vic-001": NOW - 30})
    pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1794992770,"lat":51.9,"lon":4.4}',
                     at=NOW - 30))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm",
                           b'{"id":"s","tst":1794992800,"lat":51.9,"lon":4.4}'))
    assert "clock_skew" in ctx.alerts[0].flags and "late" not in ctx.alerts[0].flags
    assert ctx.alerts[0].fix_time == NOW  # server time, not the skewed device time


def test_old_alarm_after_a_silence_is_late():
    state = InMemoryState()
    pipeline, _ = make(state)
    state.touch({"vic-001": NOW - 1800})  # out of coverage for half an hour
    pipeline.run(raw("sd/v1/dev/vic-001/loc", b'{"tst":1794998200,"lat":51.9,"lon":4.4}',
                     at=NOW - 1800))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm",
                           b'{"id":"g","tst":1794998500,"lat":51.9,"lon":4.4}'))
    assert ctx.alerts[0].flags == ["late"] and ctx.alerts[0].fix_time == 1794998500


def _fix(tst: float) -> bytes:
    return b'{"tst":%d,"lat":51.9,"lon":4.4}' % int(tst)


def _alarm(alarm_id: str, tst: float) -> bytes:
    return b'{"id":"%s","tst":%d,"lat":51.91,"lon":4.41}' % (alarm_id.encode(), int(tst))


def test_alarm_held_past_the_last_will_is_late_with_its_own_fix_time():
    """The broker's Last Will arrives after the device lost coverage: it is no sign that the
    device was in coverage when it pressed, so the alarm held meanwhile is late, not a clock."""
    pipeline, state = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW - 150), at=NOW - 150))  # right clock
    pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"online": false}', at=NOW - 60))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("a-1", NOW - 120)))
    [draft] = ctx.alerts
    assert draft.flags == ["late"]
    assert (draft.device_time, draft.fix_time) == (NOW - 120, NOW - 120)


def test_alarm_held_past_a_reconnect_status_is_late():
    """On reconnect the device says it is online (its clock right) before the held alarm."""
    pipeline, _ = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW - 600), at=NOW - 600))
    pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"tst":%d,"online":true}' % int(NOW - 1),
                     at=NOW - 1))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("b-1", NOW - 560)))
    assert ctx.alerts[0].flags == ["late"] and ctx.alerts[0].fix_time == NOW - 560


def test_two_held_alarms_delivered_back_to_back_are_both_late():
    """The first held alarm, just delivered, is no sign that the second was pressed in
    coverage."""
    pipeline, _ = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW - 600), at=NOW - 600))
    first = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("a-1", NOW - 590), at=NOW - 0.2))
    second = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("a-2", NOW - 570)))
    assert [c.alerts[0].flags for c in (first, second)] == [["late"], ["late"]]
    assert second.alerts[0].fix_time == NOW - 570


def test_a_batch_of_buffered_fixes_shows_no_wrong_clock():
    """Fixes held during the gap run behind by as long as they were held: delivered in a batch
    just before the held alarm (the lanes do not keep order), they do not make it a clock."""
    pipeline, _ = make()
    batch = b'{"fixes":[%s,%s]}' % (_fix(NOW - 130), _fix(NOW - 125))
    pipeline.run(raw("sd/v1/dev/vic-001/loc", batch, at=NOW - 1))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("a-1", NOW - 120)))
    assert ctx.alerts[0].flags == ["late"]


def test_a_status_report_shows_a_wrong_clock_as_a_fix_does():
    pipeline, _ = make()
    pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"tst":%d,"batt":80}' % int(NOW - 3_630),
                     at=NOW - 30))
    ctx = pipeline.run(raw("sd/v1/dev/vic-001/alarm", _alarm("s", NOW - 3_600)))
    assert "clock_skew" in ctx.alerts[0].flags and ctx.alerts[0].fix_time == NOW


def test_the_last_will_is_no_contact_but_any_other_status_is():
    pipeline, state = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW), at=NOW))
    pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"online": false}', at=NOW + 90))
    assert state.last_seen("vic-001") == NOW
    pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"online": false, "batt": 5}', at=NOW + 95))
    assert state.last_seen("vic-001") == NOW + 95  # the device itself said goodbye


def test_a_last_will_received_before_the_device_was_last_heard_is_ignored():
    """Workers sharing the subscription: the Last Will is handled after a fix received later;
    the device came back after it, so it is not marked offline."""
    pipeline, _ = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW), at=NOW))
    stale = pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"online": false}', at=NOW - 5))
    fresh = pipeline.run(raw("sd/v1/dev/vic-001/status", b'{"online": false}', at=NOW + 5))
    assert (stale.ignored, fresh.ignored) == (True, False)
    assert fresh.status.online is False


def test_a_retained_status_replayed_on_subscribing_says_nothing_of_the_device_now():
    """A device that publishes its Last Will retained has the broker replay it on every
    subscribe: it marks no device offline, nor heard; a retained alarm is still raised."""
    pipeline, state = make()
    pipeline.run(raw("sd/v1/dev/vic-001/loc", _fix(NOW), at=NOW))
    replayed = RawMessage("sd/v1/dev/vic-001/status", b'{"online": false}', 1, 1, NOW + 60,
                          retain=True)
    ctx = pipeline.run(replayed)
    assert ctx.ignored and ctx.status is not None
    assert state.last_seen("vic-001") == NOW
    kept = RawMessage("sd/v1/dev/vic-001/alarm", _alarm("r-1", NOW + 60), 1, 2, NOW + 60,
                      retain=True)
    assert [a.message_id for a in pipeline.run(kept).alerts] == ["r-1"]


def test_the_protocol_page_names_every_field_that_marks_a_foreign_payload():
    """docs/protocol.md lists, per channel, the fields that get a body refused as another
    channel's message, as `Decode` does."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text()
    [row] = [line for line in page.splitlines() if line.startswith("| `topic_payload_mismatch`")]
    named = {channel: set(re.findall(r"`([^`]+)`", keys)) for keys, channel in
             re.findall(r"((?:`[^`]+`(?:, | or ))*`[^`]+`) on `(\w+)`", row)}
    assert named == {channel.value: set(keys) for channel, keys in _FOREIGN_KEYS.items()}


def test_a_tamper_in_a_status_report_has_the_devices_last_known_position():
    """A status carries no position: its tamper alert is placed where the device was last
    seen (routed to that place's unit), or flagged `no_fix` when it never reported one."""
    pipeline, _ = make(None, device("off-001", role="offender"))
    tamper = b'{"tst":%d,"tamper":true}' % int(NOW)
    [unplaced] = pipeline.run(raw("sd/v1/dev/off-001/status", tamper)).alerts
    assert unplaced.lat is None and "no_fix" in unplaced.flags
    pipeline.run(raw("sd/v1/dev/off-001/loc", _fix(NOW + 10), at=NOW + 10))
    later = b'{"tst":%d,"tamper":true}' % int(NOW + 20)
    [placed] = pipeline.run(raw("sd/v1/dev/off-001/status", later, at=NOW + 20)).alerts
    assert (placed.lat, placed.lon) == (51.9, 4.4)
    assert placed.location_source == "last_known" and "last_known_position" in placed.flags


def test_a_status_report_that_names_a_position_still_counts_its_tamper():
    """A tracker that puts its position in every status report: its tamper is raised (the
    position ignored); a bare fix sent to `status` is still refused as another channel's."""
    pipeline, _ = make(None, device("off-001", role="offender"))
    both = b'{"tst":%d,"tamper":true,"lat":51.9,"lon":4.4}' % int(NOW)
    ctx = pipeline.run(raw("sd/v1/dev/off-001/status", both))
    assert ctx.rejection is None and [a.type for a in ctx.alerts] == ["tamper"]
    fix = pipeline.run(raw("sd/v1/dev/off-001/status", _fix(NOW + 5), at=NOW + 5))
    assert fix.rejection is not None and fix.rejection.reason == "topic_payload_mismatch"

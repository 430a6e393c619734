"""Golden payloads of protocol v1: every valid one decodes and encodes back to the same content;
every invalid one is refused with the documented error."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from device_protocol import (
    Ack,
    ConfigCommand,
    InvalidPayload,
    MalformedPayload,
    PayloadTooLarge,
    WarnCommand,
    codec,
)

GOLDEN = Path(__file__).parent / "golden"


def _load(kind: str, name: str) -> bytes:
    return (GOLDEN / kind / name).read_bytes().strip()


def test_alarm_full_round_trip():
    raw = _load("valid", "alarm_full.json")
    alarm = codec.decode_alarm(raw)
    assert (alarm.id, alarm.kind, alarm.lat, alarm.acc, alarm.batt) == (
        "a-2026-0001", "panic", 51.9244, 8.5, 77)
    assert json.loads(codec.encode(alarm)) == json.loads(raw)


def test_alarm_minimal_defaults_to_panic_without_fix():
    alarm = codec.decode_alarm(_load("valid", "alarm_minimal.json"))
    assert alarm.kind == "panic" and not alarm.has_fix and alarm.tst is None


def test_single_fix_and_batch():
    [fix] = codec.decode_fixes(_load("valid", "loc_single.json"))
    assert (fix.lat, fix.lon, fix.acc, fix.vel, fix.batt) == (51.9244, 4.469, 12, 1.4, 80)
    batch = codec.decode_fixes(_load("valid", "loc_batch.json"))
    assert [f.tst for f in batch] == [1795000000, 1795000030]
    assert json.loads(codec.encode_batch(batch)) == json.loads(_load("valid", "loc_batch.json"))


def test_batch_is_returned_oldest_first():
    raw = b'{"fixes":[{"tst":1795000060,"lat":1,"lon":1},{"tst":1795000000,"lat":2,"lon":2}]}'
    assert [f.lat for f in codec.decode_fixes(raw)] == [2, 1]


def test_status_and_last_will():
    status = codec.decode_status(_load("valid", "status.json"))
    assert (status.online, status.batt, status.rssi, status.fw) == (True, 54, -71, "2.4.1")
    lwt = codec.decode_status(_load("valid", "status_last_will.json"))
    assert lwt.online is False and lwt.tst is None


def test_downlink_messages():
    ack = codec.decode_ack(_load("valid", "ack.json"))
    assert isinstance(ack, Ack) and ack.state == "received"
    config = codec.decode_command(_load("valid", "cmd_config.json"))
    assert isinstance(config, ConfigCommand) and config.report_interval_s == 15
    warn = codec.decode_command(_load("valid", "cmd_warn.json"))
    assert isinstance(warn, WarnCommand) and warn.reason == "proximity"
    for name, model in (("ack.json", ack), ("cmd_config.json", config), ("cmd_warn.json", warn)):
        assert json.loads(codec.encode(model)) == json.loads(_load("valid", name))


def test_owntracks_location_maps_to_fix_in_metres_per_second():
    fix = codec.decode_owntracks(_load("valid", "owntracks_location.json"))
    assert fix is not None and fix.vel == pytest.approx(5 / 3.6)
    assert codec.decode_owntracks(b'{"_type": "transition", "event": "leave"}') is None


@pytest.mark.parametrize(("name", "error", "fields"), [
    ("loc_lat_out_of_range.json", InvalidPayload, "lat"),
    ("loc_missing_tst.json", InvalidPayload, "tst"),
    ("loc_negative_accuracy.json", InvalidPayload, "acc"),
    ("loc_empty_batch.json", InvalidPayload, "fixes"),
    ("loc_not_an_object.json", MalformedPayload, None),
    ("loc_truncated.json", MalformedPayload, None),
    ("loc_boolean_coordinates.json", InvalidPayload, "lat"),  # not converted to 1.0
    ("loc_string_coordinates.json", InvalidPayload, "lon"),
])
def test_invalid_location_payloads(name, error, fields):
    with pytest.raises(error) as info:
        codec.decode_fixes(_load("invalid", name))
    if fields:
        assert fields in str(info.value)
    assert "51.9" not in str(info.value)  # errors never echo values (coordinates)


@pytest.mark.parametrize(("name", "fields"), [
    ("status_battery_out_of_range.json", ["batt"]),
    ("status_numbers_as_flags.json", ["tamper", "batt"]),
    # PostgreSQL stores no NUL in text: one would fail every try to store the batch.
    ("status_firmware_control_character.json", ["fw"]),
])
def test_invalid_status_payload(name, fields):
    with pytest.raises(InvalidPayload) as info:
        codec.decode_status(_load("invalid", name))
    assert all(field in str(info.value) for field in fields)


def test_firmware_text_with_a_c1_control_character_is_refused():
    with pytest.raises(InvalidPayload, match="fw"):
        codec.decode_status('{"fw":"2.4.1\u0085"}'.encode())


NESTED = b"[" * 300 + b"]" * 300


@pytest.mark.parametrize(("decode", "payload", "field"), [
    (codec.decode_ack, b'{"ref":"a1","state":"received","tst":true}', "tst"),
    (codec.decode_ack, b'{"ref":"a1","state":"received","tst":"1795000000"}', "tst"),
    (codec.decode_ack, b'{"ref":"a1","state":"received","tst":-1}', "tst"),
    (codec.decode_command, b'{"cmd":"config","report_interval_s":true}', "report_interval_s"),
    (codec.decode_command, b'{"cmd":"config","report_interval_s":"15"}', "report_interval_s"),
    (codec.decode_command, b'{"cmd":"config","report_interval_s":15.0}', "report_interval_s"),
    # A further setting is a scalar: one nested deeper than any encoder writes cannot be sent
    # on, and the sender's key is not repeated.
    (codec.decode_command, b'{"cmd":"config","report_interval_s":60,"51.9":' + NESTED + b"}",
     "(other field)"),
    (codec.decode_command, b'{"cmd":"warn","reason":"zone","ref":"\\u0000"}', "ref"),
    (codec.decode_command, b'{"cmd":"warn","reason":"zone","ref":""}', "ref"),
])
def test_downlink_numbers_and_flags_are_not_converted(decode, payload, field):
    """Acks and commands are read as strictly as what devices send: `true` is no interval of
    one second, "15" no number."""
    with pytest.raises(InvalidPayload) as info:
        decode(payload)
    assert str(info.value) == f"invalid fields: {field}"


def test_config_command_settings_are_kept_and_written_again():
    command = codec.decode_command(
        b'{"cmd":"config","report_interval_s":60,"notice":"offender_released","led":true}')
    assert isinstance(command, ConfigCommand)
    assert command.model_extra == {"notice": "offender_released", "led": True}
    assert codec.decode_command(codec.encode(command)) == command


def test_whole_numbers_are_numbers_and_firmware_may_be_any_printable_text():
    [fix] = codec.decode_fixes(b'{"tst":1795000000,"lat":52,"lon":4,"acc":10,"batt":80}')
    assert (fix.lat, fix.lon, fix.acc) == (52.0, 4.0, 10.0)
    status = codec.decode_status('{"fw":"v2.1 (é) build 7","tamper":false}'.encode())
    assert status.fw == "v2.1 (é) build 7" and status.tamper is False


@pytest.mark.parametrize("name", ["alarm_empty_id.json", "alarm_unknown_kind.json"])
def test_strict_alarm_decoding_refuses(name):
    with pytest.raises(InvalidPayload):
        codec.decode_alarm(_load("invalid", name))


def test_size_limit():
    big = b'{"tst":1795000000,"lat":1,"lon":1,"pad":"' + b"x" * 8200 + b'"}'
    with pytest.raises(PayloadTooLarge):
        codec.decode_fixes(big)


def test_nan_and_infinity_are_refused():
    with pytest.raises(MalformedPayload):
        codec.decode_fixes(b'{"tst":1795000000,"lat":NaN,"lon":1}')
    with pytest.raises(MalformedPayload):  # orjson refuses numbers beyond float range
        codec.decode_fixes(b'{"tst":1795000000,"lat":1e400,"lon":1}')


class TestLenientAlarm:
    def test_valid_alarm_has_no_issues(self):
        result = codec.decode_alarm_lenient(_load("valid", "alarm_full.json"))
        assert result.issues == () and not result.unreadable and not result.derived_id

    def test_bad_fields_are_dropped_and_named(self):
        result = codec.decode_alarm_lenient(
            b'{"id":"a1","kind":"explode","tst":"yesterday","lat":51.9,"lon":999,"batt":50}')
        assert result.alarm.id == "a1" and result.alarm.kind == "panic"
        assert result.alarm.batt == 50 and not result.alarm.has_fix
        assert set(result.issues) == {"invalid_kind", "invalid_tst", "invalid_lon",
                                      "incomplete_position"}

    def test_a_boolean_position_is_dropped_not_read_as_one_degree(self):
        result = codec.decode_alarm_lenient(b'{"id":"a2","lat":true,"lon":true}')
        assert not result.alarm.has_fix
        assert {"invalid_lat", "invalid_lon"} <= set(result.issues)

    @pytest.mark.parametrize("payload", [b"\xff\xfe", b"[]", b"", b'{"kind":"panic"}',
                                         b'{"id":"' + b"x" * 65 + b'"}'])
    def test_unreadable_body_still_yields_a_stable_alarm(self, payload):
        first = codec.decode_alarm_lenient(payload)
        again = codec.decode_alarm_lenient(payload)
        assert first.unreadable and first.alarm.id == again.alarm.id
        assert first.alarm.id.startswith("body-") and first.derived_id

    def test_oversize_alarm_is_still_an_alarm_with_its_own_id(self):
        """Its retransmissions (other bytes: a battery level that dropped) are one alarm, and
        its ack names the id the device gave."""
        result = codec.decode_alarm_lenient(
            b'{"id":"big","kind":"fall","batt":80,"pad":"' + b"x" * 9000 + b'"}')
        again = codec.decode_alarm_lenient(
            b'{"id":"big","kind":"fall","batt":79,"pad":"' + b"x" * 9000 + b'"}')
        assert result.issues[0] == "payload_too_large" and result.alarm.kind == "fall"
        assert result.alarm.id == again.alarm.id == "big" and result.unreadable
        assert not result.derived_id  # unreadable, but with an id of its own

    def test_two_unreadable_oversize_alarms_alike_in_their_first_bytes_are_two_alarms(self):
        head = b'{"id":"big","pad":"' + b"x" * 9000  # never closed: not JSON
        first = codec.decode_alarm_lenient(head + b'1')
        second = codec.decode_alarm_lenient(head + b'2')
        assert first.alarm.id != second.alarm.id and first.alarm.id.startswith("body-")
        assert codec.decode_alarm_lenient(head + b'1').alarm.id == first.alarm.id

    def test_an_alarm_beyond_what_a_broker_passes_is_not_read(self):
        huge = b'{"id":"huge","pad":"' + b"x" * codec.OVERSIZE_ALARM_READ_BYTES + b'"}'
        result = codec.decode_alarm_lenient(huge)
        assert list(result.issues) == ["payload_too_large"] and result.alarm.id.startswith("body-")
        assert result.derived_id


@pytest.mark.parametrize("alarm_id", ["press 17", "é", " ", "Druk 17 " + "ж" * 56, "😀" * 64,
                                      "a\u2028b"])
def test_an_alarm_id_is_any_text_of_1_to_64_characters_without_control_characters(alarm_id):
    """DESIGN 4: `id` is a string of 1-64 characters; it comes back as the ack's `ref`."""
    result = codec.decode_alarm_lenient(orjson.dumps({"id": alarm_id, "batt": 80}))
    assert result.alarm.id == alarm_id and not result.unreadable
    ack = codec.decode_ack(orjson.dumps({"ref": alarm_id, "state": "received",
                                         "tst": 1795000000}))
    assert ack.ref == alarm_id


@pytest.mark.parametrize("alarm_id", ["", "x" * 65, "é" * 65, "a\x00", "a\nb", "a\x7f",
                                      "a\x85", "\t"])
def test_an_alarm_id_too_long_or_with_a_control_character_is_unreadable(alarm_id):
    result = codec.decode_alarm_lenient(orjson.dumps({"id": alarm_id}))
    assert result.alarm.id.startswith("body-") and result.issues == ("invalid_id",)


@pytest.mark.parametrize("bare", [b"nan", b"NaN", b"-inf", b"07", b"yes"])
def test_a_bare_value_in_place_of_the_id_is_no_id(bare):
    """What the reader puts in place of a value JSON does not allow is not taken for an id:
    two such alarms are two alarms, not one."""
    first = codec.decode_alarm_lenient(b'{"id":' + bare + b',"batt":1}')
    second = codec.decode_alarm_lenient(b'{"id":' + bare + b',"batt":2}')
    assert "invalid_id" in first.issues and first.alarm.id != second.alarm.id


def test_a_lone_surrogate_in_one_field_of_an_alarm_costs_that_field_only():
    """orjson refuses a lone surrogate escape anywhere in the body; the alarm keeps the rest."""
    result = codec.decode_alarm_lenient(
        b'{"id":"a-7","kind":"\\ud800","lat":51.92,"lon":4.47,"acc":8}')
    assert result.alarm.id == "a-7" and result.alarm.has_fix and result.alarm.kind == "panic"
    assert "invalid_kind" in result.issues
    bad_id = codec.decode_alarm_lenient(b'{"id":"\\udfff","lat":51.92,"lon":4.47}')
    assert bad_id.alarm.id.startswith("body-") and bad_id.alarm.has_fix

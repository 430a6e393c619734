from __future__ import annotations

import pytest

from device_protocol import Channel, InvalidTopic, Topics


def test_build_and_parse_every_device_channel():
    topics = Topics()
    for channel in ("alarm", "loc", "status", "ack", "cmd"):
        topic = topics.device("vic-001", channel)
        assert topic == f"sd/v1/dev/vic-001/{channel}"
        parsed = topics.parse(topic)
        assert parsed.channel == Channel(channel) and parsed.device_id == "vic-001"


def test_custom_root_and_police_feed():
    topics = Topics("pilot/rotterdam/v1/")
    assert topics.alarm("dev_01") == "pilot/rotterdam/v1/dev/dev_01/alarm"
    assert topics.police_alerts("RE07") == "pilot/rotterdam/v1/police/RE07/alerts"
    assert topics.police_filter() == "pilot/rotterdam/v1/police/+/alerts"
    with pytest.raises(InvalidTopic):
        Topics().parse("pilot/rotterdam/v1/dev/dev_01/alarm")


def test_owntracks():
    parsed = Topics().parse("owntracks/anna/phone")
    assert parsed.channel is Channel.OWNTRACKS
    assert (parsed.owntracks_user, parsed.owntracks_device) == ("anna", "phone")
    assert Topics.owntracks("anna", "phone") == "owntracks/anna/phone"


def test_uplink_filters_cover_what_devices_send():
    assert Topics().uplink_filters() == [
        "sd/v1/dev/+/alarm", "sd/v1/dev/+/loc", "sd/v1/dev/+/status", "owntracks/+/+"]


@pytest.mark.parametrize("topic", [
    "sd/v1/dev/ab/alarm",  # id too short
    "sd/v1/dev/" + "x" * 65 + "/alarm",  # id too long
    "sd/v1/dev/bad id/alarm",
    "sd/v1/dev/vic-001/reboot",  # unknown channel
    "sd/v1/dev/vic-001/alarm/extra",
    "sd/v2/dev/vic-001/alarm",
    "sd/v1/police/RE07/alerts",  # not a device topic
    "owntracks/only-user",
])
def test_invalid_topics(topic):
    with pytest.raises(InvalidTopic):
        Topics().parse(topic)


@pytest.mark.parametrize("root", ["", "sd/+/v1", "sd/#", "a//b"])
def test_invalid_roots(root):
    with pytest.raises(ValueError):
        Topics(root)


def test_building_refuses_bad_ids():
    with pytest.raises(InvalidTopic):
        Topics().alarm("no")
    with pytest.raises(InvalidTopic):
        Topics().police_alerts("RE 07")


def test_alarm_topics_are_told_without_parsing():
    topics = Topics("pilot/v1")
    assert topics.is_alarm("pilot/v1/dev/vic-001/alarm")
    for topic in ("owntracks/anna/alarm", "pilot/v1/dev/vic-001/loc", "sd/v1/dev/vic-001/alarm",
                  "pilot/v1/police/RE07/alarm"):
        assert not topics.is_alarm(topic), topic

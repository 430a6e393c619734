"""docs/asyncapi.yaml must describe what the code does: same topics, same enums, same limits."""

from __future__ import annotations

from pathlib import Path

import yaml

from device_protocol import ACK_STATES, ALARM_KINDS, Topics
from device_protocol.models import MAX_BATCH_FIXES

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())


def test_channel_addresses_match_the_topic_grammar():
    topics = Topics()
    addresses = {name: c["address"] for name, c in SPEC["channels"].items()}
    for channel in ("alarm", "loc", "status", "ack", "cmd"):
        assert addresses[channel] == topics.device("DEVICE", channel).replace("DEVICE", "{deviceId}")
    assert addresses["policeAlerts"] == topics.police_alerts("UNIT").replace("UNIT", "{unit}")
    assert addresses["owntracks"] == "owntracks/{user}/{device}"


def test_enums_and_limits_match_the_models():
    messages = SPEC["components"]["messages"]
    assert messages["alarm"]["payload"]["properties"]["kind"]["enum"] == list(ALARM_KINDS)
    assert messages["ack"]["payload"]["properties"]["state"]["enum"] == list(ACK_STATES)
    assert messages["fixBatch"]["payload"]["properties"]["fixes"]["maxItems"] == MAX_BATCH_FIXES

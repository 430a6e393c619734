from __future__ import annotations

from loadtests.memory_probe import probe


def test_probe_holds_the_requested_devices_and_measures():
    result = probe(devices=200, measures=50)
    assert result["devices"] == 200 and result["measures"] == 50
    assert result["total_mib"] >= result["devices_mib"] >= result["baseline_mib"] > 0

from __future__ import annotations

from loadtests.memory_probe import probe


def test_probe_holds_the_requested_devices_and_measures():
    result = probe(devices=200, measures=50)
    assert result["devices"] == 200 and result["measures"] == 50
    assert result["total_mib"] >= result["devices_mib"] >= result["baseline_mib"] > 0


def test_the_baseline_holds_no_part_of_the_benchmark_harness():
    """The probe's baseline is taken after importing the geofence benchmark (for its measures):
    that import must not bring the latency benchmark's modules, which would count as the
    worker's memory (36 MiB of them did once)."""
    import subprocess
    import sys

    code = ("import sys; import loadtests.bench_geofence; "
            "print(sorted(m for m in sys.modules if m in "
            "('loadtests.report', 'loadtests.alarm_path', 'loadtests.bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "[]"

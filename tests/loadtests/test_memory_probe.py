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


def test_the_devices_under_a_contact_ban_hold_an_hour_of_kept_fixes():
    """The probe gives every device under a contact ban an hour of fixes every 30 s, thinned
    to about one a minute by the engine, and raises nothing of them."""
    from geofences import Engine, GeofenceConfig
    from loadtests import bench_geofence
    from loadtests.memory_probe import _an_hour_of_contact_parties

    built, _, homes = bench_geofence.build(400)
    engine = Engine(built, GeofenceConfig())
    parties = _an_hour_of_contact_parties(engine, homes)
    assert parties == len(engine.index.contact_parties) > 0
    kept = [len(engine._recent[d]) for d in engine.index.contact_parties]
    assert all(55 <= n <= 62 for n in kept)
    assert not any(engine.states_of(d) for d in engine.index.contact_parties)

"""Memory of one worker holding N devices and M measures, measured in a fresh process.

    python -m loadtests.memory_probe --devices 100000 --measures 100000     # prints JSON

It holds what an ingest worker holds per device and measure: the device directory's cached
`DeviceInfo` entries (the same structure `DeviceDirectory` keeps, filled directly rather than
through 100,000 database reads), the in-process state store's last fixes (the embedded mode;
with Redis these live in Redis), and the geofence engine over M measures (built by
`loadtests.bench_geofence.build`) with a state for each device that has reported a fix, and
the version of each measure as `LiveMeasures` keeps it. Each device under a contact ban
(offender and victim) has reported every 30 s for an hour, so the engine holds what it keeps of
them for their partners' buffered batches (`partner_history_s`), as in service.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import uuid
from collections.abc import Sequence

import psutil


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def probe(devices: int, measures: int) -> dict[str, float]:
    from backend.devices.directory import DeviceInfo
    from backend.state.store import InMemoryState, LastFix
    from geofences import Engine, GeofenceConfig
    from loadtests import bench_geofence

    gc.collect()
    result = {"baseline_mib": rss_mib()}
    started = time.perf_counter()
    expiry = time.monotonic() + 3_600
    directory: dict[str, tuple[float, DeviceInfo | None]] = {}
    for i in range(devices):
        device_id = f"dev-{i:06d}"
        directory[device_id] = (expiry, DeviceInfo(
            id=device_id, case_id=uuid.uuid4(), role="offender" if i % 2 else "victim",
            active=True, report_interval_s=30, case_reference=f"C-{i:08d}",
            home_police_unit="RE07", exercise=False,
        ))
    state = InMemoryState()
    now = time.time()
    state.set_last_fixes({d: LastFix(now, 51.9 + i * 1e-6, 4.4, 10.0)
                          for i, d in enumerate(directory)})
    state.touch({d: now for d in directory})
    gc.collect()
    result["devices_mib"] = rss_mib()

    built, subjects, homes = bench_geofence.build(measures)
    engine = Engine(built, GeofenceConfig())
    # What `LiveMeasures` keeps beside the engine: each measure's version, to read only the
    # measures that changed.
    held = {m.id: (1, m) for m in built}
    fixes, _, _ = bench_geofence.fixes_for(engine, subjects, homes, min(len(subjects), devices))
    for i in range(0, len(fixes), 1_000):
        chunk = fixes[i:i + 1_000]
        engine.on_fixes(chunk, chunk[-1][1])
    del fixes
    result["contact_parties"] = _an_hour_of_contact_parties(engine, homes)
    gc.collect()
    result["total_mib"] = rss_mib()
    result["measures_mib"] = result["total_mib"] - result["devices_mib"]
    result["devices_only_mib"] = result["devices_mib"] - result["baseline_mib"]
    result["seconds"] = time.perf_counter() - started
    result["devices"] = devices
    result["measures"] = len(engine.index)
    del held
    return result


def _an_hour_of_contact_parties(engine, homes: dict[str, tuple[float, float]]) -> int:
    """Feed each device under a contact ban an hour of fixes, every 30 s, far from its
    partner (no alert, no state): what the engine keeps of them. Returns their number."""
    import pyproj

    to_wgs84 = pyproj.Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)
    parties = sorted(engine.index.contact_parties)
    where = {}
    for device in parties:
        offender = device.removeprefix("vic-")
        hx, hy = homes[offender]
        where[device] = (hx + 15_000.0, hy) if device.startswith("vic-") else (hx, hy)
    lons, lats = to_wgs84.transform([where[d][0] for d in parties],
                                         [where[d][1] for d in parties])
    position = {d: (float(lat), float(lon)) for d, lat, lon in zip(parties, lats, lons,
                                                                   strict=True)}
    start = time.time() - 3_600
    for step in range(120):
        tst = start + 30.0 * step
        engine.on_fixes([(d, tst, *position[d], 10.0) for d in parties], tst)
    return len(parties)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.memory_probe")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--measures", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.devices, args.measures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

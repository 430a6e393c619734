"""Geofence benchmark: microseconds per fix against 1,000 / 10,000 / 100,000 active measures,
next to the bare shapely STRtree query on the same projected zones in the same run.

    python -m loadtests.bench_geofence            # prints a table
    from loadtests.bench_geofence import run      # run(sizes) -> list[dict], for `make bench`

Measures are realistic in size: zones of 50 m to 2 km (circles, protected places and star-shaped
polygons) around points in the Netherlands, plus contact bans; each offender device is the
subject of 1-3 measures near its home area. Half the fixes fall within 3 km of one of the
device's own zones, half elsewhere within 20 km.

Columns: `on_fix` (one call per fix, pyproj projection included), `on_fixes` (the batch entry
point, vectorised projection), `bare_query` (STRtree.query(Point, predicate="intersects") on the
already projected point), `ratio` = on_fix / bare_query (target <= 2).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyproj
import shapely
from shapely.geometry import Point

from geofences import ContactBan, Engine, ExclusionZone, GeofenceConfig, ProtectedPlace
from loadtests.sections import DOCS, write_section

SIZES = (1_000, 10_000, 100_000)
FIXES = 20_000
T0 = 1_767_261_600.0
# Land in the Netherlands, roughly (RD New metres).
RD_BOX = (20_000.0, 310_000.0, 270_000.0, 600_000.0)

_to_wgs = pyproj.Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)


def _star(
    rng: np.random.Generator, cx: float, cy: float, radius: float, n: int = 12
) -> np.ndarray:
    step = 2 * np.pi / n
    angles = np.arange(n) * step + rng.uniform(-0.3, 0.3, n) * step
    radii = radius * rng.uniform(0.6, 1.0, n)
    ring = np.column_stack((cx + radii * np.cos(angles), cy + radii * np.sin(angles)))
    return np.vstack((ring, ring[:1]))


def build(
    size: int, seed: int = 1
) -> tuple[list, list[str], dict[str, tuple[float, float]]]:
    """`size` measures, the offender device ids, and each device's home point (RD metres)."""
    rng = np.random.default_rng(seed)
    measures: list = []
    devices: list[str] = []
    homes: dict[str, tuple[float, float]] = {}
    while len(measures) < size:
        device = f"off-{len(devices)}"
        devices.append(device)
        hx, hy = rng.uniform(RD_BOX[0], RD_BOX[2]), rng.uniform(RD_BOX[1], RD_BOX[3])
        homes[device] = (hx, hy)
        for _ in range(int(rng.integers(1, 4))):
            if len(measures) >= size:
                break
            mid = f"m-{len(measures)}"
            radius = float(rng.uniform(50, 2_000))
            ring = float(rng.choice([0.0, 250.0, 500.0]))
            # As in a real case, the offender's home lies outside his zones and their rings:
            # a fleet reporting from home raises no alerts of its own.
            angle = rng.uniform(0, 2 * np.pi)
            distance = radius + ring + rng.uniform(300, 5_000)
            cx, cy = hx + distance * np.cos(angle), hy + distance * np.sin(angle)
            kind = rng.uniform()
            common = {
                "id": mid,
                "case_id": f"c-{device}",
                "subject_device_ids": (device,),
                "pre_alert_m": ring,
            }
            if kind < 0.35:
                lon, lat = _to_wgs.transform(cx, cy)
                measures.append(
                    ProtectedPlace(centre=(lon, lat), radius_m=radius, **common)
                )
            elif kind < 0.5:
                lon, lat = _to_wgs.transform(cx, cy)
                measures.append(
                    ExclusionZone(centre=(lon, lat), radius_m=radius, **common)
                )
            elif kind < 0.95:
                ring_xy = _star(rng, cx, cy, radius)
                lons, lats = _to_wgs.transform(ring_xy[:, 0], ring_xy[:, 1])
                area = shapely.polygons(np.column_stack((lons, lats)))
                measures.append(ExclusionZone(area=area, **common))
            else:
                measures.append(
                    ContactBan(
                        protected_device_ids=(f"vic-{device}",),
                        radius_m=radius,
                        **common,
                    )
                )
    return measures, devices, homes


def fixes_for(
    engine: Engine, devices: Sequence[str], homes: dict, n: int, seed: int = 2
):
    """n fixes (device, tst, lat, lon, acc) and their projected (x, y)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(devices), n)
    xs = np.empty(n)
    ys = np.empty(n)
    by_subject = engine.index.by_subject
    for i, p in enumerate(picks.tolist()):
        device = devices[p]
        own = [cm for cm in by_subject.get(device, ()) if not cm.contact]
        if own and rng.uniform() < 0.5:
            cm = own[int(rng.integers(0, len(own)))]
            bx, by = (cm.minx + cm.maxx) / 2, (cm.miny + cm.maxy) / 2
            xs[i], ys[i] = (
                bx + rng.uniform(-3_000, 3_000),
                by + rng.uniform(-3_000, 3_000),
            )
        else:
            hx, hy = homes[device]
            xs[i], ys[i] = (
                hx + rng.uniform(-20_000, 20_000),
                hy + rng.uniform(-20_000, 20_000),
            )
    lons, lats = _to_wgs.transform(xs, ys)
    accs = rng.choice([5.0, 10.0, 25.0, 60.0], n)
    fixes = [
        (devices[p], T0 + 30.0 * i, float(lat), float(lon), float(acc))
        for i, (p, lat, lon, acc) in enumerate(
            zip(picks.tolist(), lats, lons, accs, strict=True)
        )
    ]
    return fixes, xs, ys


def _time_on_fix(engine: Engine, fixes) -> tuple[float, int]:
    events = 0
    on_fix = engine.on_fix
    start = time.perf_counter()
    for device, tst, lat, lon, acc in fixes:
        events += len(on_fix(device, tst, lat, lon, acc, tst))
    return time.perf_counter() - start, events


def run(sizes: Sequence[int] = SIZES, n_fixes: int = FIXES) -> list[dict]:
    """Benchmark each size; one dict per size with microseconds per fix and the ratio."""
    results = []
    for size in sizes:
        t_build = time.perf_counter()
        measures, devices, homes = build(size)
        engine = Engine(measures, GeofenceConfig())
        build_s = time.perf_counter() - t_build
        fixes, xs, ys = fixes_for(engine, devices, homes, n_fixes)
        tree = engine.index.tree
        # warm-up on a throw-away engine sharing the index
        _time_on_fix(Engine(measures[:1], GeofenceConfig()), fixes[:1000])

        elapsed, events = _time_on_fix(engine, fixes)
        on_fix_us = elapsed / n_fixes * 1e6

        batch_engine = Engine((), GeofenceConfig())
        batch_engine._index = engine.index  # same compiled measures, fresh state
        start = time.perf_counter()
        for i in range(0, n_fixes, 500):
            chunk = fixes[i : i + 500]
            batch_engine.on_fixes(chunk, chunk[-1][1])
        on_fixes_us = (time.perf_counter() - start) / n_fixes * 1e6

        hits = 0
        start = time.perf_counter()
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            hits += len(tree.query(Point(x, y), predicate="intersects"))
        bare_us = (time.perf_counter() - start) / n_fixes * 1e6

        start = time.perf_counter()
        tree.query(shapely.points(xs, ys), predicate="intersects")
        bare_vec_us = (time.perf_counter() - start) / n_fixes * 1e6

        results.append(
            {
                "measures": size,
                "devices": len(devices),
                "fixes": n_fixes,
                "events": events,
                "build_s": round(build_s, 2),
                "on_fix_us": round(on_fix_us, 2),
                "on_fixes_us": round(on_fixes_us, 2),
                "bare_query_us": round(bare_us, 2),
                "bare_query_vectorised_us": round(bare_vec_us, 2),
                "ratio": round(on_fix_us / bare_us, 2),
                "fixes_per_s": round(1e6 / on_fix_us),
            }
        )
    return results


BEGIN, END = "<!-- geofence:begin -->", "<!-- geofence:end -->"


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        BEGIN, "",
        f"Generated by `{command}` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}).", "",
        "| active measures | offender devices | µs per fix (`on_fix`) | µs per fix (`on_fixes`, "
        "batches of 500) | bare STRtree query µs | ratio on_fix / bare | verdict (<= 2x) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "pass" if r["ratio"] <= 2 else "FAIL"
        lines.append(
            f"| {r['measures']:,} | {r['devices']:,} | {r['on_fix_us']} | {r['on_fixes_us']} | "
            f"{r['bare_query_us']} | {r['ratio']} | {verdict} |"
        )
    lines += ["", "`on_fix` includes projecting the fix to RD New (pyproj); the bare query gets "
              "points already projected.", "", END]
    return "\n".join(lines)


def write_docs(rows: list[dict], command: str, path: Path = DOCS) -> None:
    """Replace the generated geofence section of docs/benchmarks.md (append it if missing)."""
    write_section(path, markdown(rows, command), BEGIN, END, "## Geofence evaluation per fix")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    docs = "--docs" in args
    sizes = tuple(int(a) for a in args if a != "--docs") or SIZES
    rows = run(sizes)
    if docs:
        write_docs(rows, "python -m loadtests.bench_geofence --docs")
    headers = (
        "measures",
        "devices",
        "build_s",
        "on_fix_us",
        "on_fixes_us",
        "bare_query_us",
        "bare_query_vectorised_us",
        "ratio",
        "fixes_per_s",
        "events",
    )
    print(" | ".join(f"{h:>12}" for h in headers))
    for row in rows:
        print(" | ".join(f"{row[h]!s:>12}" for h in headers))
    print(
        "ratio = on_fix / bare STRtree query (target <= 2); on_fix includes the pyproj projection"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

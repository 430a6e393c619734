"""What the benchmark puts in its database: victims that press panic, an offender fleet with
its homes, and the fleet's active measures (through the `backend.measures` package when the
geofence integration is present)."""

from __future__ import annotations

import dataclasses
import importlib.util
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyproj
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from loadtests import bench_geofence
from loadtests.fleet import FleetDevice
from loadtests.stack import register

_RD_TO_WGS = pyproj.Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)


def measures_supported() -> bool:
    """True when the backend stores measures and the ingest pipeline evaluates them."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("backend.measures.repository", "backend.pipeline.zones"))


def webhooks_supported() -> bool:
    return importlib.util.find_spec("backend.subscriptions.views") is not None


@dataclass
class Seed:
    victims: list[str]
    fleet: list[FleetDevice]
    measures: int  # active measures stored (0 when the backend has no measures)


def seed(engine: Engine, *, victims: int, measures: int, seed_value: int = 1) -> Seed:
    """Register `victims` victim devices and the offender fleet of `measures` measures (about
    one device per two measures); store the measures when the backend supports them."""
    victim_ids = [f"bv-{i:05d}" for i in range(victims)]
    register(engine, victim_ids, "victim")
    built, subjects, homes = bench_geofence.build(max(measures, 1), seed=seed_value)
    cases = register(engine, subjects, "offender")
    xs = [homes[d][0] for d in subjects]
    ys = [homes[d][1] for d in subjects]
    lons, lats = _RD_TO_WGS.transform(xs, ys)
    fleet = [FleetDevice(d, float(lat), float(lon))
             for d, lat, lon in zip(subjects, lats, lons, strict=True)]
    stored = 0
    if measures and measures_supported():
        stored = store_measures(engine, built[:measures], cases)
    return Seed(victim_ids, fleet, stored)


def store_measures(engine: Engine, measures: Sequence, cases: dict[str, uuid.UUID]) -> int:
    """Bulk-insert measures (`repository.measure_values`) and raise the catalogue version once."""
    from backend.measures import repository
    from backend.measures.models import MeasureRow

    rows = []
    for m in measures:
        case_id = cases[m.subject_device_ids[0]]
        m = dataclasses.replace(m, case_id=str(case_id))
        rows.append({"id": m.id, "case_id": case_id, "active": True, "version": 1,
                     **repository.measure_values(m)})
    with Session(engine) as session, session.begin():
        for i in range(0, len(rows), 2_000):
            session.execute(insert(MeasureRow), rows[i:i + 2_000])
        repository.bump_catalog(session)
    return len(rows)

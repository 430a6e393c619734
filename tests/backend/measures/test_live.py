"""The live measures of a worker: one stored measure that can no longer be compiled (stored
before a rule or the CRS changed, or edited by hand) is left out, by id in the log; every other
measure, new and revoked ones included, still takes effect. Before, the whole reload failed and
the worker kept what it had for good. A reload after a change reads and compiles again only
the measures that changed."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import create_engine, update
from sqlalchemy.orm import sessionmaker

from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.devices.models import Device
from backend.measures import flows
from backend.measures.live import LiveMeasures
from backend.measures.models import MeasureRow
from geofences import GeofenceConfig
from tests.backend.measures.places import ROTTERDAM, offset, zone_feature

# Lon/lat of a ring that crosses itself (a bow tie) near Rotterdam.
BOW_TIE = [[4.47, 51.92], [4.48, 51.93], [4.48, 51.92], [4.47, 51.93], [4.47, 51.92]]


def _store(tmp_path: Path) -> tuple[sessionmaker, object]:
    url = f"sqlite:///{tmp_path}/sw.db"
    upgrade(url)
    sessions = sessionmaker(create_engine(url))
    with sessions.begin() as s:
        case = Case(reference="C-live", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-l", case_id=case.id, role="offender"))
        s.flush()
        return sessions, case.id


def test_a_reload_reads_and_compiles_only_the_measures_that_changed(tmp_path: Path, caplog):
    sessions, case_id = _store(tmp_path)
    names = [f"zone-{i}" for i in range(4)]
    with sessions.begin() as s:
        for i, name in enumerate(names):
            flows.create(s, case_id, zone_feature("off-l", centre=offset(*ROTTERDAM, 1_000 * i, 0),
                                                  measure_id=name), GeofenceConfig())
    live = LiveMeasures(sessions, GeofenceConfig(), poll_s=0)
    caplog.set_level(logging.INFO, logger="backend.measures.live")
    assert live.refresh()
    assert "measures loaded count=4 version=4 read=4" in caplog.text
    before = dict(live.engine.index.measures)

    with sessions.begin() as s:  # one moved, one revoked, one new
        flows.replace(s, case_id, "zone-1", zone_feature(
            "off-l", centre=offset(*ROTTERDAM, 0, 5_000), half_m=300), GeofenceConfig())
        flows.deactivate(s, case_id, "zone-2")
        flows.create(s, case_id, zone_feature("off-l", centre=offset(*ROTTERDAM, 0, -5_000),
                                              measure_id="zone-new"), GeofenceConfig())
    caplog.clear()
    assert live.refresh()
    assert "measures loaded count=4 version=7 read=2" in caplog.text  # zone-1 and zone-new
    index = live.engine.index.measures
    assert set(index) == {"zone-0", "zone-1", "zone-3", "zone-new"}
    assert index["zone-0"] is before["zone-0"] and index["zone-3"] is before["zone-3"]
    assert index["zone-1"] is not before["zone-1"]
    assert live.engine.index.query_lonlat(*reversed(offset(*ROTTERDAM, 0, 5_000))) == ["zone-1"]
    assert not live.refresh()  # nothing changed since


def test_a_measure_that_cannot_be_compiled_is_left_out_and_the_others_load(
        tmp_path: Path, caplog):
    sessions, case_id = _store(tmp_path)
    with sessions.begin() as s:
        for name, centre in (("zone-ok", ROTTERDAM), ("zone-bad", offset(*ROTTERDAM, 3_000, 0))):
            flows.create(s, case_id, zone_feature("off-l", centre=centre, measure_id=name),
                         GeofenceConfig())
        s.execute(update(MeasureRow).where(MeasureRow.id == "zone-bad").values(
            exceptions=[{"geometry": {"type": "Polygon", "coordinates": [BOW_TIE]},
                         "reason": "hand edit"}]))
    live = LiveMeasures(sessions, GeofenceConfig(), poll_s=3600)

    assert live.refresh()
    assert set(live.engine.index.measures) == {"zone-ok"}
    assert "measure not loaded: zone-bad (invalid_geometry)" in caplog.text

"""The live measures of a worker: one stored measure that can no longer be compiled (stored
before a rule or the CRS changed, or edited by hand) is left out, by id in the log; every other
measure, new and revoked ones included, still takes effect. Before, the whole reload failed and
the worker kept what it had for good."""

from __future__ import annotations

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


def test_a_measure_that_cannot_be_compiled_is_left_out_and_the_others_load(
        tmp_path: Path, caplog):
    url = f"sqlite:///{tmp_path}/sw.db"
    upgrade(url)
    sessions = sessionmaker(create_engine(url))
    with sessions.begin() as s:
        case = Case(reference="C-live", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-l", case_id=case.id, role="offender"))
        s.flush()
        for name, centre in (("zone-ok", ROTTERDAM), ("zone-bad", offset(*ROTTERDAM, 3_000, 0))):
            flows.create(s, case.id, zone_feature("off-l", centre=centre, measure_id=name),
                         GeofenceConfig())
        s.execute(update(MeasureRow).where(MeasureRow.id == "zone-bad").values(
            exceptions=[{"geometry": {"type": "Polygon", "coordinates": [BOW_TIE]},
                         "reason": "hand edit"}]))
    live = LiveMeasures(sessions, GeofenceConfig(), poll_s=3600)

    assert live.refresh()
    assert set(live.engine.index.measures) == {"zone-ok"}
    assert "measure not loaded: zone-bad (invalid_geometry)" in caplog.text

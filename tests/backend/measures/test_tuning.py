"""Zone tuning: a simulated track against a zone it enters and one far away, recorded pings of
a case, and the `schildwacht tune` command."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from backend.cases.models import Case
from backend.cli import main
from backend.db.migrate import upgrade
from backend.db.types import point_ewkt
from backend.devices.models import Device, Ping
from backend.measures import tuning
from backend.measures.errors import MeasureRejected
from geofences import GeofenceConfig
from simulator.scenarios import build
from tests.backend.measures.places import offset, square


def _scenario_zone() -> dict:
    [measure] = build("zone_breach").registration()["measures"]
    return {"type": "Feature", "geometry": measure["geometry"],
            "properties": {"kind": "exclusion_zone"}}


def _far_zone() -> dict:
    ring = _scenario_zone()["geometry"]["coordinates"][0]
    lon, lat = ring[0]
    far_lat, far_lon = offset(lat, lon, 0, 25_000)
    return {"type": "Feature", "geometry": {"type": "Polygon",
                                            "coordinates": [square(far_lat, far_lon, 200)]},
            "properties": {"kind": "exclusion_zone"}}


def _simulated(feature: dict):
    tracks, offenders, victims = tuning.simulated_tracks("zone_breach")
    measures = tuning.load_proposal(feature, offenders=offenders, victims=victims,
                                    override_devices=True)
    return tuning.tune(measures, tracks, GeofenceConfig())


def test_zone_the_track_enters_counts_breaches():
    report = _simulated(_scenario_zone())
    assert report.totals["zone_breach"] >= 1
    assert report.days == 1 and report.alerts_per_day() > 0


def test_zone_far_away_counts_nothing():
    report = _simulated(_far_zone())
    assert sum(report.totals.values()) == 0 and report.alerts_per_day() == 0


def test_invalid_proposal_is_refused_with_reasons():
    bad = _scenario_zone()
    bad["properties"]["pre_alert_m"] = 1e6
    with pytest.raises(MeasureRejected) as err:
        tuning.load_proposal(bad, offenders=["o"], override_devices=True)
    assert err.value.problems[0].code == "absurd_size"


def test_tune_command_prints_a_table(tmp_path: Path, capsys, monkeypatch):
    path = tmp_path / "zone.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [_scenario_zone()]}))
    monkeypatch.setenv("SCHILDWACHT_DATABASE__URL", f"sqlite:///{tmp_path}/unused.db")
    assert main(["tune", "--measure", str(path), "--simulate", "zone_breach"]) == 0
    out = capsys.readouterr().out
    assert "zone_breach" in out and "total" in out and "alerts per day" in out
    assert main(["tune", "--measure", str(path)]) == 2  # neither recorded range nor simulation


def test_recorded_pings_of_the_case_are_replayed(tmp_path: Path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path}/sw.db"
    upgrade(url)
    sessions = sessionmaker(create_engine(url))
    feature = _scenario_zone()
    tracks, offenders, _ = tuning.simulated_tracks("zone_breach")
    fixes = tracks[offenders[0]]
    with sessions.begin() as s:
        case = Case(reference="C-tune", home_police_unit="RE07")
        s.add(case)
        s.flush()
        case_id = case.id
        s.add(Device(id="off-tune", case_id=case.id, role="offender"))
        s.flush()
        for f in fixes:
            at = datetime.fromtimestamp(f.tst, UTC)
            s.add(Ping(device_id="off-tune", fix_time=at, received_at=at, lat=f.lat, lon=f.lon,
                       acc=f.acc, geom=point_ewkt(f.lat, f.lon)))
    start = datetime.fromtimestamp(fixes[0].tst, UTC) - timedelta(minutes=1)
    end = datetime.fromtimestamp(fixes[-1].tst, UTC) + timedelta(minutes=1)
    with sessions() as s:
        recorded, offs, vics = tuning.recorded_tracks(s, case_id, start, end)
    assert offs == ["off-tune"] and vics == [] and len(recorded["off-tune"]) == len(fixes)
    measures = tuning.load_proposal(feature, case_id=str(case_id), offenders=offs, victims=vics)
    assert tuning.tune(measures, recorded, GeofenceConfig()).totals["zone_breach"] >= 1
    empty, _, _ = tuning.recorded_tracks(s, uuid.uuid4(), start, end)
    assert empty == {}

    path = tmp_path / "zone.geojson"
    path.write_text(json.dumps(feature))
    monkeypatch.setenv("SCHILDWACHT_DATABASE__URL", url)
    assert main(["tune", "--measure", str(path), "--case", str(case_id),
                 "--from", start.isoformat(), "--to", end.isoformat()]) == 0
    assert "total" in capsys.readouterr().out

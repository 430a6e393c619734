"""Zone tuning: how many alerts would a proposed measure have raised per day, on the case's
recorded pings or on a simulated track, before it goes live (`schildwacht tune`).

The replay itself is `geofences.replay` (pure); this module gathers the tracks and prints.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from geofences import (
    ContactBan,
    GeofenceConfig,
    InvalidMeasure,
    Measure,
    ReplayReport,
    TrackFix,
    measure_from_feature,
    replay,
)
from backend.devices.models import Device, Ping
from backend.measures.errors import MeasureRejected
from backend.measures.flows import features_of

COLUMNS = ("zone_breach", "proximity", "approach", "partner_position_unknown")
Tracks = dict[str, list[TrackFix]]


def load_proposal(
    source: Path | Mapping[str, Any],
    *,
    case_id: str | None = None,
    offenders: Sequence[str] = (),
    victims: Sequence[str] = (),
    override_devices: bool = False,
    config: GeofenceConfig | None = None,
) -> list[Measure]:
    """The measures of a GeoJSON file (Feature or FeatureCollection), validated. Missing ids,
    case and devices are filled in: devices from `offenders`/`victims` (also when
    `override_devices`, e.g. for a simulated track whose device ids are its own)."""
    body = json.loads(Path(source).read_text()) if isinstance(source, Path | str) else source
    features, _ = features_of(body)
    measures: list[Measure] = []
    problems = []
    for i, feature in enumerate(features):
        props = dict(feature.get("properties") or {})
        props.setdefault("case_id", case_id or "proposal")
        if override_devices or not props.get("subject_device_ids"):
            props["subject_device_ids"] = list(offenders)
        if props.get("kind") == "contact_ban" and (
            override_devices or not props.get("protected_device_ids")
        ):
            props["protected_device_ids"] = list(victims)
        candidate = {**feature, "id": feature.get("id") or f"proposal-{i}", "properties": props}
        try:
            measures.append(measure_from_feature(candidate, config=config))
        except InvalidMeasure as exc:
            problems.extend(exc.problems)
    if problems:
        raise MeasureRejected(problems)
    return measures


def recorded_tracks(
    session: Session, case_id: uuid.UUID, start: datetime, end: datetime
) -> tuple[Tracks, list[str], list[str]]:
    """Recorded pings of the case's devices between `start` and `end`, and the ids of its
    offender and victim devices."""
    devices = dict(session.execute(select(Device.id, Device.role).where(Device.case_id == case_id)).all())
    tracks: Tracks = {d: [] for d in devices}
    rows = session.execute(
        select(Ping.device_id, Ping.fix_time, Ping.lat, Ping.lon, Ping.acc)
        .where(Ping.device_id.in_(list(devices)), Ping.fix_time >= start, Ping.fix_time < end)
        .order_by(Ping.fix_time)
    )
    for device_id, fix_time, lat, lon, acc in rows:
        tracks[device_id].append(TrackFix(fix_time.timestamp(), lat, lon, acc))
    offenders = sorted(d for d, r in devices.items() if r == "offender")
    victims = sorted(d for d, r in devices.items() if r == "victim")
    return tracks, offenders, victims


def simulated_tracks(name: str, seed: int = 0) -> tuple[Tracks, list[str], list[str]]:
    """The fixes of a simulator scenario per device, and its offender and victim ids."""
    from device_protocol import codec
    from simulator.device import MessageKind
    from simulator.scenarios import build

    scenario = build(name, seed=seed)
    tracks: Tracks = {d.device_id: [] for d in scenario.devices}
    for message in scenario.messages:
        if message.kind in (MessageKind.FIX, MessageKind.BATCH):
            for fix in codec.decode_fixes(message.payload):
                tracks[message.device_id].append(TrackFix(fix.tst, fix.lat, fix.lon, fix.acc))
    offenders = [d.device_id for d in scenario.devices if d.role.value == "offender"]
    victims = [d.device_id for d in scenario.devices if d.role.value == "victim"]
    return tracks, offenders, victims


def tune(measures: Sequence[Measure], tracks: Tracks, config: GeofenceConfig) -> ReplayReport:
    """Replay the tracks against the measures (contact bans need the victims' tracks too)."""
    wanted = {d for m in measures for d in m.subject_device_ids}
    wanted |= {d for m in measures if isinstance(m, ContactBan) for d in m.protected_device_ids}
    return replay({d: f for d, f in tracks.items() if d in wanted}, list(measures), config)


def report_table(report: ReplayReport, title: str = "Alerts per day") -> Table:
    table = Table(title=title)
    table.add_column("day")
    for kind in COLUMNS:
        table.add_column(kind, justify="right")
    table.add_column("cleared", justify="right")
    for day, counts in sorted(report.per_day.items()):
        cleared = sum(v for k, v in counts.items() if k.endswith("_cleared"))
        table.add_row(day.isoformat(), *(str(counts.get(k, 0)) for k in COLUMNS), str(cleared))
    totals = report.totals
    table.add_row(
        "total", *(str(totals.get(k, 0)) for k in COLUMNS),
        str(sum(v for k, v in totals.items() if k.endswith("_cleared"))), style="bold",
    )
    table.caption = f"{report.days} day(s) of track, {report.alerts_per_day():.2f} alerts per day"
    return table


def print_report(report: ReplayReport, console: Console | None = None) -> None:
    (console or Console()).print(report_table(report))


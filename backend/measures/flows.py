"""Orchestration of measures: GeoJSON in, validation (the `geofences` rules plus the case's
devices), storage, GeoJSON out. Runs in the caller's transaction; the caller commits and then
tells the live engine to reload (`LiveMeasures.mark_changed`). Here a measure is checked
against the offender's home registered; `homes` checks a home registered later against the
measures."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geofences import (
    GeofenceConfig,
    InvalidMeasure,
    Measure,
    Problem,
    measure_from_feature,
    measure_to_feature,
)
from backend.caselog import service as caselog
from backend.cases import service as cases
from backend.measures import repository, service
from backend.measures.errors import MeasureConflict, MeasureRejected
from backend.measures.models import MeasureRow

MEASURE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,39}$")
# Which role the devices named in a measure must have.
DEVICE_ROLES = {"subject_device_ids": "offender", "protected_device_ids": "victim"}


def features_of(body: Any) -> tuple[list[Mapping[str, Any]], bool]:
    """The features of a GeoJSON Feature or FeatureCollection, and whether it was a collection."""
    if isinstance(body, Mapping) and body.get("type") == "FeatureCollection":
        features = body.get("features")
        if not isinstance(features, list) or not features:
            raise MeasureRejected(
                [Problem("invalid_field", "features", "expected a non-empty list of Features")]
            )
        return features, True
    if isinstance(body, Mapping) and body.get("type") == "Feature":
        return [body], False
    raise MeasureRejected(
        [Problem("invalid_field", "type", "expected a GeoJSON Feature or FeatureCollection")]
    )


def parse(
    session: Session,
    case_id: uuid.UUID,
    feature: Any,
    config: GeofenceConfig,
    *,
    measure_id: str | None = None,
    prefix: str = "",
) -> tuple[Measure | None, list[Problem]]:
    """Validate one feature for a case: the geofence rules (with the offender's home), the id
    and case, and that every device named belongs to the case in the right role."""
    problems: list[Problem] = []
    if not isinstance(feature, Mapping):
        return None, [Problem("invalid_field", f"{prefix}type", "expected a GeoJSON Feature")]
    props = feature.get("properties")
    props = dict(props) if isinstance(props, Mapping) else props
    if isinstance(props, dict):
        given_case = props.get("case_id")
        if given_case is not None and str(given_case) != str(case_id):
            problems.append(Problem(
                "invalid_field", f"{prefix}properties.case_id",
                "the feature names another case than the URL",
            ))
        props["case_id"] = str(case_id)
    mid = measure_id or feature.get("id") or (props or {}).get("id") or str(uuid.uuid4())
    if not isinstance(mid, str) or not MEASURE_ID.match(mid):
        problems.append(Problem(
            "invalid_field", f"{prefix}id",
            "a measure id is 1-40 characters: letters, digits, '.', '_', ':' or '-'",
        ))
        mid = str(uuid.uuid4())
    candidate = {**feature, "id": mid, "properties": props}
    measure: Measure | None = None
    try:
        measure = measure_from_feature(
            candidate, home=service.get_home(session, case_id), config=config
        )
    except InvalidMeasure as exc:
        problems.extend(Problem(p.code, prefix + p.path, p.message) for p in exc.problems)
    if isinstance(props, dict):
        problems.extend(_device_problems(session, case_id, props, prefix))
    return (None if problems else measure), problems


def _device_problems(
    session: Session, case_id: uuid.UUID, props: Mapping[str, Any], prefix: str
) -> list[Problem]:
    devices = service.case_devices(session, case_id)
    problems = []
    for key, role in DEVICE_ROLES.items():
        ids = props.get(key)
        if not isinstance(ids, list):
            continue
        for i, device_id in enumerate(ids):
            if not isinstance(device_id, str):
                continue
            path = f"{prefix}properties.{key}[{i}]"
            if device_id not in devices:
                problems.append(Problem(
                    "device_not_in_case", path,
                    f"device {device_id} is not a device of this case",
                ))
            elif devices[device_id] != role:
                problems.append(Problem(
                    "wrong_device_role", path,
                    f"device {device_id} is a {devices[device_id]} device, expected {role}",
                ))
    return problems


def create(
    session: Session, case_id: uuid.UUID, body: Any, config: GeofenceConfig
) -> tuple[list[MeasureRow], bool]:
    """Import a Feature or FeatureCollection: every measure is stored, or none. The case is
    locked first, so a home registered at the same moment is checked against these measures
    or they against it (`homes`), never each against the state before the other."""
    cases.get(session, case_id, for_update=True)
    features, collection = features_of(body)
    measures: list[Measure] = []
    problems: list[Problem] = []
    for i, feature in enumerate(features):
        measure, found = parse(
            session, case_id, feature, config, prefix=f"features[{i}]." if collection else ""
        )
        problems.extend(found)
        if measure is not None:
            measures.append(measure)
    if problems:
        raise MeasureRejected(problems)
    ids = [m.id for m in measures]
    taken = sorted({i for i in ids if ids.count(i) > 1 or service.exists(session, i)})
    if taken:
        raise MeasureConflict(f"measure id already in use: {', '.join(taken)}")
    try:
        rows = [
            service.insert(session, m.id, case_id, repository.measure_values(m))
            for m in measures
        ]
    except IntegrityError:  # an id taken, or the case deleted, since the checks above
        session.rollback()
        cases.get(session, case_id)  # CaseNotFound if deleted meanwhile
        taken = [i for i in dict.fromkeys(ids) if service.exists(session, i)]
        raise MeasureConflict(
            f"measure id already in use: {', '.join(taken)}" if taken
            else "a measure of this import was stored by another request at the same moment"
        ) from None
    return rows, collection


def replace(
    session: Session, case_id: uuid.UUID, measure_id: str, feature: Any, config: GeofenceConfig
) -> MeasureRow:
    """Replace a measure's content (its id and case stay); its version goes up. The measure is
    locked until the caller commits: replacements at the same moment each get a version. Then
    the case is locked, as by an import; measure before case is the order a deactivation takes
    them in (its case log entry), so the two never wait for each other crosswise."""
    row = service.get(session, case_id, measure_id, for_update=True)
    cases.get(session, case_id, for_update=True)
    measure, problems = parse(session, case_id, feature, config, measure_id=measure_id)
    if problems or measure is None:
        raise MeasureRejected(problems)
    values = repository.measure_values(measure)
    if not row.active:
        values["active"] = True
        values["deactivated_at"] = None
    return service.update(session, row, values)


def deactivate(session: Session, case_id: uuid.UUID, measure_id: str) -> MeasureRow:
    row = service.get(session, case_id, measure_id, for_update=True)
    return service.deactivate(session, row)


def log_change(session: Session, rows: list[MeasureRow], change: str, actor: str) -> None:
    """Note each measure imported, replaced or deactivated in its case's log (kind `measure`,
    which every party reading the log sees, the police too): which measure, of what type, its
    version, authority, reference and validity. Never its geometry: the log is read more
    widely than the places a measure protects."""
    for row in rows:
        caselog.append(session, row.case_id, "measure", actor, {
            "measure_id": row.id, "change": change, "type": row.type, "version": row.version,
            "active": row.active, "authority": row.authority, "reference": row.reference,
            "valid_from": row.valid_from.isoformat() if row.valid_from else None,
            "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        })


def to_feature(row: MeasureRow) -> dict[str, Any]:
    """A stored measure as a GeoJSON Feature, with its bookkeeping in the properties."""
    feature = measure_to_feature(repository.to_measure(row))
    feature["properties"].update({
        "active": row.active,
        "version": row.version,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "deactivated_at": row.deactivated_at.isoformat() if row.deactivated_at else None,
    })
    return feature


def to_collection(rows: list[MeasureRow]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [to_feature(r) for r in rows]}

"""The supervision loop: device health over time, turned into grouped desk alerts.

Each pass (`run_once(now)`) reads every active device's last contact (hot state `last_seen`, or
the durable `devices.last_status_at`; a device missing from the hot state no earlier than since
when it holds times, `measured_from`), battery, charging, tamper and last fix, as columns, decides
the health signals with `check_fleet` (the pursuit thresholds while an urgent alert of the
device's case is open), and then:

- urgent signals (tamper) go the normal alert route at once, one open alert per device;
- health signals go through `group_health_signals`: one alert per case and type, open alerts
  updated (devices added) rather than duplicated, and one storm summary per desk when many
  devices fall silent together (an open summary is updated only when its counts changed).

A pass raises at most `max_new_alerts_per_pass` new alerts (`first_to_raise`: urgent ones, then
storm summaries, then the oldest conditions), the rest at the next pass, so that a storm of
thousands of cases does not hold the pass beyond the watchdog's time.

Signals are per episode: a signal the desk already closed an alert for, with nothing new
reported since the alert covered the device (its raise, or the device's addition to it:
`closed_episode`), raises nothing again; the latest closed alert per device and type is read in
one query per pass, from the alerts of the cases in an episode only.

A panic alarm never passes here: it is raised by the ingest pipeline on its own path, and this
loop neither holds locks it needs nor delays it. The clock is injected for tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Select, func, select, text, update
from sqlalchemy.orm import Session

from backend.periodic import Periodic
from backend.alerts import service as alert_service
from backend.alerts.document import alert_document
from backend.alerts.flows import Effects, alert_event, case_context
from backend.alerts.lifecycle import CLOSED_STATES, OPEN_STATES
from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service as caselog
from backend.db.columns import epoch_us, fetch_columns, uuid_text
from backend.cases.device_commands import PURSUIT_TYPES
from backend.cases.models import Case
from backend.devices.models import Device
from backend.hub.bus import EventBus
from backend.pipeline.context import AlertDraft
from backend.supervision.grouping import (
    STORM_TYPE,
    GroupedHealthAlert,
    HealthAlertUpdate,
    OpenHealthAlert,
    StormSummary,
    closed_episode,
    group_health_signals,
)
from backend.supervision.health import (
    GROUPABLE_TYPES,
    UNKNOWN,
    FleetHealth,
    HealthSignal,
    SupervisionThresholds,
    ahead_of_clock,
    check_fleet,
    from_us,
    partition_signals,
    to_us,
)

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = "system:supervision"
DESK_FLAG = "desk:"
# One supervising process at a time on PostgreSQL (transaction-level advisory lock).
ADVISORY_LOCK_KEY = 0x5C41D_0006
# Ids per query of the closed alerts (`_closed_statements`): within every driver's parameters.
CLOSED_IDS_PER_QUERY = 1_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PassResult:
    devices: int
    signals: int
    urgent: int
    new: int
    updates: int
    storms: int
    suppressed: int
    deferred: int = 0  # new alerts left for the next pass (`max_new_alerts_per_pass`)


def first_to_raise(
    urgent: list[HealthSignal],
    storms: list[StormSummary],
    groups: list[GroupedHealthAlert],
    limit: int,
) -> tuple[list[HealthSignal], list[StormSummary], list[GroupedHealthAlert], int]:
    """The new alerts a pass raises, `limit` at most, and how many are left for the next pass:
    urgent ones first, then the desks' storm summaries, then the grouped health alerts, the
    oldest condition first (an unknown start counts as oldest). Pure."""
    left = max(len(urgent) + len(storms) + len(groups) - limit, 0)
    urgent = urgent[:limit]
    storms = storms[:limit - len(urgent)]
    room = limit - len(urgent) - len(storms)
    ordered = sorted(groups, key=lambda g: (g.since is not None, g.since or _EPOCH))
    return urgent, storms, ordered[:room], left


def measured_from(
    seen: np.ndarray, fixes: np.ndarray, status_at: np.ndarray, registered: np.ndarray,
    since: int,
) -> tuple[np.ndarray, np.ndarray]:
    """When each device was last heard from and last had a fix, as a pass measures them
    (microseconds, `to_us`), from the state store's last-seen and fix times (`seen`, `fixes`),
    the durable last status report, the registration, and since when the store holds its times
    (`StoredTimes.since`, at the latest the pass's time). Pure.

    Heard from: the later of the store's time and the status report. A device missing from
    the store is measured from no earlier than `since`: the store may have lost it (Redis
    restarted without persistence, or flushed) while it went on reporting, so after a loss
    every such device gets the full threshold from the loss, and one that is really silent is
    flagged that much later, not the whole fleet at once. A device never heard, or never with
    a fix, is measured from its registration, as one that just reported."""
    heard = np.maximum(seen, status_at)
    heard = np.where(heard == UNKNOWN, registered, heard)
    heard = np.where(seen == UNKNOWN, np.maximum(heard, since), heard)
    fixed = np.where(fixes == UNKNOWN, np.maximum(registered, since), fixes)
    return heard, fixed


def _times_us(seconds: list[float | None]) -> np.ndarray:
    """Epoch seconds (None: unknown) as whole microseconds (UNKNOWN)."""
    values = np.array(seconds, dtype=float)
    known = ~np.isnan(values)
    us = np.full(len(values), UNKNOWN, dtype=np.int64)
    us[known] = np.rint(values[known] * 1e6)
    return us


class SupervisionLoop(Periodic):
    name = "supervision"

    def __init__(
        self,
        rt: Runtime,
        clock=utc_now,
        interval_s: float | None = None,
        bus: EventBus | None = None,
    ) -> None:
        config = rt.settings.supervision
        self.rt = rt
        self.clock = clock
        self.bus = bus or rt.bus
        self.interval_s = interval_s or config.supervision_interval_s
        self.thresholds = SupervisionThresholds(
            silent_after_s=config.silent_after_s,
            silent_after_pursuit_s=config.silent_after_pursuit_s,
            battery_low_pct=config.battery_low_pct,
            battery_recover_pct=config.battery_recover_pct,
            no_fix_after_s=config.no_fix_after_s,
            no_fix_after_pursuit_s=config.no_fix_after_pursuit_s,
            clock_tolerance_s=config.clock_tolerance_s,
        )
        self.window = timedelta(seconds=config.storm_window_s)
        self.storm_threshold = config.storm_threshold
        self.max_new = config.max_new_alerts_per_pass
        # Devices whose last contact or fix was ahead of the clock at the last pass (logged once).
        self._ahead: set[str] = set()

    # -- one pass -------------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> PassResult:
        now = now or self.clock()
        with self.rt.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"),
                {"key": ADVISORY_LOCK_KEY},
            ):
                return PassResult(0, 0, 0, 0, 0, 0, 0)  # another process is supervising
            fleet, pursuit, exercise_cases = self._observe(session, now)
            open_health = self._open_health_alerts(session)
            open_tamper = set(
                session.scalars(
                    select(Alert.device_id).where(
                        Alert.type == "tamper", Alert.state.in_(sorted(OPEN_STATES))
                    )
                )
            )
            signals = check_fleet(fleet, now, self.thresholds, pursuit)
            self._log_ahead(fleet, now)
            closed = self._closed_alerts(session, signals)
            urgent, groupable = partition_signals(signals)
            urgent = [
                s for s in urgent
                if s.device_id not in open_tamper and not closed_episode(s, closed)
            ]
            decision = group_health_signals(
                groupable,
                open_health,
                now,
                self.window,
                storm_threshold=self.storm_threshold,
                closed=closed,
                closed_storms=self._closed_storms(session, now - self.window),
                exercise_cases=exercise_cases,
            )
            # Urgent ones first, at most `max_new` new alerts (the rest at the next pass). Each
            # write is its own short transaction, so that the case rows it locks (case log
            # chaining) never hold up an alarm of the same case for long; the read transaction
            # above stays open only to hold the advisory lock.
            urgent, new_storms, new_groups, deferred = first_to_raise(
                urgent, [st for st in decision.storms if st.alert_id is None],
                list(decision.new), self.max_new,
            )
            drafts = [self._urgent_draft(s, now) for s in urgent]
            drafts += [self._storm_draft(st, now) for st in new_storms]
            drafts += [self._group_draft(g, now) for g in new_groups]
            for draft in drafts:
                self._write(partial(self._raise, draft=draft))
            for change in decision.updates:
                self._write(partial(self._update, change=change, now=now))
            for storm in decision.storms:
                if storm.alert_id is not None:
                    self._write(partial(self._update_storm, storm=storm, now=now))
        result = PassResult(
            len(fleet.device_ids),
            len(signals),
            len(urgent),
            len(new_groups),
            len(decision.updates),
            len(new_storms) + sum(st.alert_id is not None for st in decision.storms),
            decision.suppressed,
            deferred,
        )
        if deferred:
            log.warning("supervision pass: %d new alert(s) left for the next pass (at most %d "
                        "a pass)", deferred, self.max_new)
        if result.new or result.updates or result.storms or result.urgent:
            log.info(
                "supervision pass devices=%d new=%d updates=%d storms=%d urgent=%d",
                result.devices,
                result.new,
                result.updates,
                result.storms,
                result.urgent,
            )
        return result

    def _log_ahead(self, fleet: FleetHealth, now: datetime) -> None:
        """Log each device once when its last contact or fix is first found ahead of the clock
        (not trusted, `ahead_of_clock`)."""
        rows = ahead_of_clock(fleet.last_seen, now, self.thresholds) | ahead_of_clock(
            fleet.last_fix_at, now, self.thresholds
        )
        ahead = {fleet.device_ids[i] for i in np.flatnonzero(rows).tolist()}
        new = sorted(ahead - self._ahead)
        if new:
            log.warning(
                "supervision: last contact or fix ahead of the clock, not trusted: %d device(s) "
                "%s", len(new), ", ".join(new[:20]) + (" ..." if len(new) > 20 else ""),
            )
        self._ahead = ahead

    def _raise(self, session: Session, draft: AlertDraft) -> Effects:
        return self.rt.flow.raise_alerts(session, [draft])

    def _write(self, change: Callable[[Session], Effects]) -> None:
        with self.rt.sessions.begin() as session:
            effects = change(session)
        effects.carry_out(self.rt.dispatcher, self.bus)

    def _observe(self, session: Session, now: datetime
                 ) -> tuple[FleetHealth, np.ndarray, frozenset[str]]:
        """Every active device as columns, which of them are in pursuit mode, and the cases of
        exercises among theirs.

        A pass reads every active device (150,000 in the pilot's sizing), so the database gives
        plain values (times as microseconds, case ids as text) and the state store only the
        times: no Python object per device but its row."""
        ids, cases, status_at, offline, battery, charging, tamper, created_at, desks, drills = (
            fetch_columns(session, select(
                Device.id, uuid_text(Device.case_id),
                func.coalesce(epoch_us(Device.last_status_at), UNKNOWN),
                Device.online.is_(False), Device.battery, Device.charging.is_(True),
                Device.tamper.is_(True), func.coalesce(epoch_us(Device.created_at), UNKNOWN),
                Case.home_vt_desk, Case.exercise.is_(True),
            )
            .join(Case, Case.id == Device.case_id)
            .where(Device.active.is_(True)))
        )
        pursuit_cases = set(
            session.scalars(
                select(uuid_text(Alert.case_id))
                .where(
                    Alert.state.in_(sorted(OPEN_STATES)),
                    Alert.type.in_(sorted(PURSUIT_TYPES)),
                    Alert.case_id.is_not(None),
                )
                .distinct()
            )
        )
        battery_open = {
            d
            for devices in session.scalars(
                select(Alert.health_devices).where(
                    Alert.type == "battery_low", Alert.state.in_(sorted(OPEN_STATES))
                )
            )
            for d in devices or []
        }
        stored = self.rt.state.read_times(ids)
        since = min(int(_times_us([stored.since])[0]), to_us(now))
        last_seen, last_fix = measured_from(
            _times_us(stored.seen), _times_us(stored.fixes), np.array(status_at, dtype=np.int64),
            np.array(created_at, dtype=np.int64), since,
        )
        fleet = FleetHealth(
            device_ids=ids,
            case_ids=cases,
            desk_codes=desks,
            last_seen=last_seen,
            last_fix_at=last_fix,
            offline=np.array(offline, dtype=bool),
            battery_pct=np.array(battery, dtype=float),
            charging=np.array(charging, dtype=bool),
            tamper=np.array(tamper, dtype=bool),
            battery_low_open=np.fromiter((d in battery_open for d in ids), bool, len(ids)),
            last_status_at=np.array(status_at, dtype=np.int64),
        )
        pursuit = np.fromiter((c in pursuit_cases for c in cases), bool, len(cases))
        exercise_cases = frozenset(c for c, drill in zip(cases, drills, strict=True) if drill)
        return fleet, pursuit, exercise_cases

    @staticmethod
    def _closed_statements(signals: list[HealthSignal]) -> list[Select[Any]]:
        """The queries that read the closed alerts which may cover the signals: of their types,
        last changed at or after the oldest report a signal rests on, and only of the signals'
        cases.

        Every alert about a device carries the device's case, a device keeps its case, and a
        grouped alert lists devices of its own case, so the alerts of the cases in an episode
        hold every alert covering one of their devices; a pass reads those (by
        `ix_alerts_case_type_raised`), not every closed alert of the fleet changed since the
        oldest report (months ago for a device silent that long). By their last change, not
        their raising: an alert covers a device added to it from when it was added, and was
        changed then. Signals without a case go by device id. At most `CLOSED_IDS_PER_QUERY`
        ids per query (a storm may put a case of every device in one pass)."""
        if not signals:
            return []
        # The raising time as the device times are read (`epoch_us`), so that both round alike.
        statement = select(
            Alert.id, Alert.type, Alert.device_id, Alert.health_devices, epoch_us(Alert.raised_at)
        ).where(
            Alert.type.in_(sorted({s.type for s in signals})),
            Alert.state.in_(sorted(CLOSED_STATES)),
        )
        reported = [s.reported_at for s in signals]
        if all(r is not None for r in reported):
            oldest = min(r for r in reported if r is not None)
            statement = statement.where(Alert.updated_at >= oldest - timedelta(seconds=1))
        cases = sorted({s.case_id for s in signals if s.case_id is not None})
        caseless = sorted({s.device_id for s in signals if s.case_id is None})
        return [
            statement.where(Alert.case_id.in_([uuid.UUID(c) for c in chunk]))
            for chunk in _chunks(cases, CLOSED_IDS_PER_QUERY)
        ] + [
            statement.where(Alert.device_id.in_(chunk))
            for chunk in _chunks(caseless, CLOSED_IDS_PER_QUERY)
        ]

    @classmethod
    def _closed_alerts(
        cls, session: Session, signals: list[HealthSignal]
    ) -> dict[tuple[str, str], datetime]:
        """When the latest closed alert per (device, type) of the signals' cases and types began
        to cover the device: its raising, or when the device was added to it (`_added_at`).
        Only those changed at or after the oldest report a signal rests on can cover one
        (`closed_episode`). One query per pass (per `CLOSED_IDS_PER_QUERY` cases,
        `_closed_statements`), and one for the additions to closed alerts of several devices."""
        rows = [row for statement in cls._closed_statements(signals)
                for row in session.execute(statement)]
        added = cls._added_at(session, [row[0] for row in rows if len(row[3] or []) > 1])
        latest: dict[tuple[str, str], int] = {}
        for alert_id, kind, device_id, devices, raised_us in rows:
            for device in devices or ([device_id] if device_id else []):
                key = (device, kind)
                covered_us = max(raised_us, added.get((alert_id, device), UNKNOWN))
                latest[key] = max(latest.get(key, UNKNOWN), covered_us)
        return {key: from_us(us) for key, us in latest.items()}  # type: ignore[misc]

    @staticmethod
    def _added_at(session: Session, alert_ids: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], int]:
        """When each device was added to each of these alerts after its raise (their `grouped`
        timeline entries), as whole microseconds, by (alert id, device id)."""
        added: dict[tuple[uuid.UUID, str], int] = {}
        for chunk in _chunks(alert_ids, CLOSED_IDS_PER_QUERY):
            for alert_id, at_us, detail in session.execute(
                select(AlertEvent.alert_id, epoch_us(AlertEvent.at), AlertEvent.detail).where(
                    AlertEvent.alert_id.in_(chunk), AlertEvent.kind == "grouped")
            ):
                for device in (detail or {}).get("added_devices", []):
                    key = (alert_id, device)
                    added[key] = max(added.get(key, UNKNOWN), at_us)
        return added

    @staticmethod
    def _storm_counts(
        session: Session, storm_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int | None, int | None]]:
        """The counts each storm summary last got: from its latest `raised` or `grouped`
        timeline entry (one query, only when there are storm summaries to read)."""
        counts: dict[uuid.UUID, tuple[int | None, int | None]] = {}
        if not storm_ids:
            return counts
        for alert_id, detail in session.execute(
            select(AlertEvent.alert_id, AlertEvent.detail)
            .where(AlertEvent.alert_id.in_(storm_ids), AlertEvent.kind.in_(("raised", "grouped")))
            .order_by(AlertEvent.id)
        ):
            if detail and "device_count" in detail:
                counts[alert_id] = (detail["device_count"], detail.get("total_device_count"))
        return counts

    @classmethod
    def _closed_storms(
        cls, session: Session, since: datetime
    ) -> dict[tuple[str | None, bool], int]:
        """The device count of the latest storm summary each desk closed, live and exercise
        apart, of those raised since `since` (a storm's window: an older one covers no device
        silent in it)."""
        latest: dict[tuple[str | None, bool], tuple[datetime, uuid.UUID]] = {}
        for alert_id, flags, exercise, raised_at in session.execute(
            select(Alert.id, Alert.flags, Alert.exercise, Alert.raised_at).where(
                Alert.type == STORM_TYPE, Alert.state.in_(sorted(CLOSED_STATES)),
                Alert.raised_at >= since)
        ):
            key = (_desk_of(flags), bool(exercise))
            if key not in latest or raised_at > latest[key][0]:
                latest[key] = (raised_at, alert_id)
        counts = cls._storm_counts(session, [alert_id for _, alert_id in latest.values()])
        return {key: count for key, (_, alert_id) in latest.items()
                if (count := counts.get(alert_id, (None, None))[0]) is not None}

    @classmethod
    def _open_health_alerts(cls, session: Session) -> list[OpenHealthAlert]:
        alerts = list(session.scalars(
            select(Alert).where(
                Alert.type.in_(sorted(GROUPABLE_TYPES | {STORM_TYPE})),
                Alert.state.in_(sorted(OPEN_STATES)),
            )
        ))
        counts = cls._storm_counts(session, [a.id for a in alerts if a.type == STORM_TYPE])
        found = []
        for a in alerts:
            desk = _desk_of(a.flags)
            devices = a.health_devices or ([a.device_id] if a.device_id else [])
            found.append(
                OpenHealthAlert(
                    alert_id=str(a.id),
                    case_id=str(a.case_id) if a.case_id else None,
                    type=a.type,
                    device_ids=frozenset(devices),
                    desk_code=desk,
                    device_count=counts.get(a.id, (None, None))[0],
                    total_device_count=counts.get(a.id, (None, None))[1],
                    exercise=bool(a.exercise),
                )
            )
        return found

    # -- drafts and updates ---------------------------------------------------------------------
    @staticmethod
    def _urgent_draft(signal: Any, now: datetime) -> AlertDraft:
        return AlertDraft(
            type=signal.type,
            device_id=signal.device_id,
            case_id=uuid.UUID(signal.case_id) if signal.case_id else None,  # type: ignore[arg-type]
            message_id=f"supervision-{signal.type}-{int(now.timestamp())}",
            raised_at=now.timestamp(),
            flags=["supervision"],
            detail={"reason": signal.detail},
        )

    @staticmethod
    def _group_draft(group: GroupedHealthAlert, now: datetime) -> AlertDraft:
        flags = ["grouped"] + (["in_storm"] if group.in_storm else [])
        if group.desk_code:
            flags.append(DESK_FLAG + group.desk_code)
        return AlertDraft(
            type=group.type,
            device_id=group.device_ids[0],
            case_id=uuid.UUID(group.case_id) if group.case_id else None,  # type: ignore[arg-type]
            message_id=None,
            raised_at=now.timestamp(),
            flags=flags,
            detail={
                "devices": list(group.device_ids),
                "since": group.since.isoformat() if group.since else None,
            },
        )

    @staticmethod
    def _storm_draft(storm: StormSummary, now: datetime) -> AlertDraft:
        flags = ["storm"] + ([DESK_FLAG + storm.desk_code] if storm.desk_code else [])
        return AlertDraft(
            type=STORM_TYPE,
            device_id=None,  # type: ignore[arg-type]  # a desk summary: no device
            case_id=None,  # type: ignore[arg-type]  # and no case
            message_id=None,
            raised_at=now.timestamp(),
            flags=flags,
            exercise=storm.exercise,  # routed to exercise endpoints only
            detail={
                "devices": [],
                "device_count": storm.device_count,
                "total_device_count": storm.total_device_count,
                "window_start": storm.window_start.isoformat(),
            },
        )

    def _update(
        self, session: Session, change: HealthAlertUpdate, now: datetime
    ) -> Effects:
        """Add the devices to the open alert; if the desk closed it since the pass read it, raise
        them as a new grouped alert instead (a closed alert would cover them for good)."""
        effects = Effects()
        alert_id = uuid.UUID(change.alert_id)
        updated = session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.state.in_(sorted(OPEN_STATES)))
            .values(
                health_devices=list(change.device_ids),
                sequence=Alert.sequence + 1,
                updated_at=now,
            )
        )
        if updated.rowcount == 0:
            log.info("supervision: alert id=%s closed meanwhile; %d device(s) raised anew",
                     alert_id, len(change.added_device_ids))
            return self._raise(session, self._group_draft(change.as_new(), now))
        alert_service.add_event(
            session,
            alert_id,
            at=now,
            actor=ACTOR,
            kind="grouped",
            detail={"added_devices": list(change.added_device_ids)},
        )
        alert = alert_service.get(session, alert_id)
        assert alert is not None
        if alert.case_id is not None:
            caselog.append(
                session,
                alert.case_id,
                "alert_update",
                ACTOR,
                {"type": alert.type, "added_devices": list(change.added_device_ids)},
                alert_id=alert.id,
                at=now,
            )
        effects.events.append(
            alert_event(session, "alert.updated", alert, self._document(session, alert))
        )
        return effects

    def _update_storm(
        self, session: Session, storm: StormSummary, now: datetime
    ) -> Effects:
        """Record the summary's new counts, while it is open: one the desk closed since the pass
        read it is left as it was (the next pass raises a new one if the storm grew beyond it)."""
        effects = Effects()
        assert storm.alert_id is not None
        alert_id = uuid.UUID(storm.alert_id)
        if session.scalar(
            select(Alert.id)
            .where(Alert.id == alert_id, Alert.state.in_(sorted(OPEN_STATES)))
            .with_for_update(key_share=True)
        ) is None:
            return effects
        alert_service.add_event(
            session,
            alert_id,
            at=now,
            actor=ACTOR,
            kind="grouped",
            detail={
                "device_count": storm.device_count,
                "total_device_count": storm.total_device_count,
            },
        )
        alert = alert_service.get(session, alert_id)
        assert alert is not None
        effects.events.append(alert_event(
            session, "alert.updated", alert, self._document(session, alert),
            storm={"device_count": storm.device_count,
                   "total_device_count": storm.total_device_count},
        ))
        return effects

    @staticmethod
    def _document(session: Session, alert: Alert) -> dict[str, Any]:
        case = session.get(Case, alert.case_id) if alert.case_id else None
        document = alert_document(
            alert, device_role=None, case=case_context(case) if case else None
        )
        document["devices"] = list(alert.health_devices or [])
        return document


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _desk_of(flags: list[str] | None) -> str | None:
    """The desk a health alert or storm summary was raised for (its `DESK_FLAG` flag)."""
    return next((f[len(DESK_FLAG):] for f in flags or [] if f.startswith(DESK_FLAG)), None)

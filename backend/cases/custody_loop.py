"""The custody loop: starts and ends custody-release tightening on time.

A release entered with a date in the past tightens its case at once (`CaseFlow.update`). This
loop does what no request would: it tightens a case whose release was dated in the future once
that date has come, and ends a tightening when the policy's period is over, sending the
devices their normal report interval again (a faster interval costs the battery). One pass
(`run_once(now)`) claims the due cases (`due_cases`) with `FOR NO KEY UPDATE SKIP LOCKED` on
PostgreSQL (several processes may run it; each case is handled by one; on SQLite a pass with
due cases holds the database's write lock) and lets
`CaseFlow.reconcile_custody` decide; the device commands are written to the outbox in the same
transaction and sent after commit. The clock is injected, so tests drive it through time
without sleeping.

A case that cannot be reconciled (a device's report interval set by hand beyond what a command
may carry, a bug) is logged by id and stops no other case: each case has a savepoint of its own
(`_reconcile_alone`), and the failed case is left out of this process's passes for
`RETRY_AFTER`, so that it is not tried first (by its id) and logged again in every pass.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from backend.alerts.flows import Effects
from backend.cases.flows import CaseFlow
from backend.cases.models import Case
from backend.db.engine import hold_write_lock
from backend.periodic import Periodic

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = "system:custody"
# A case that could not be reconciled is tried again after this long (by this process).
RETRY_AFTER = timedelta(minutes=10)
# Failed cases remembered at most (`CustodyLoop._failed`); beyond, the memory starts afresh.
MAX_REMEMBERED = 10_000


def due_cases(
    now: datetime, limit: int, dialect: str, skip: Iterable[uuid.UUID] = ()
) -> Select[tuple[Case]]:
    """The cases whose tightening is due to start or end at `now`, but those in `skip`. On
    PostgreSQL claimed `FOR NO KEY UPDATE SKIP LOCKED`: not `FOR UPDATE`, which would hold a
    panic of that case (its alert's foreign key takes a key-share lock on the case row) behind
    the pass."""
    query = (
        select(Case)
        .where(or_(
            and_(  # a release whose date has come and that was not carried out
                Case.custody_status == "released",
                Case.released_at <= now,
                or_(Case.custody_tightened_release.is_(None),
                    Case.custody_tightened_release != Case.released_at),
            ),
            Case.custody_tightened_until <= now,  # a tightening whose period is over
        ))
        .order_by(Case.id)
        .limit(limit)
    )
    skipped = sorted(skip)
    if skipped:
        query = query.where(Case.id.not_in(skipped))
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True, key_share=True, of=Case)
    return query


class CustodyLoop(Periodic):
    name = "custody"

    def __init__(self, rt: Runtime, interval_s: float | None = None, batch: int = 100) -> None:
        self.rt = rt
        self.interval_s = interval_s or rt.settings.supervision.custody_interval_s
        self.batch = batch
        self.flow = CaseFlow(rt.topics, rt.flow.policy,
                             rt.settings.supervision.pursuit_report_interval_s)
        # Cases that could not be reconciled, and when they may be tried again.
        self._failed: dict[uuid.UUID, datetime] = {}

    def run_once(self, now: datetime | None = None) -> int:
        """Reconcile every due case at `now`; return how many changed their devices or log."""
        now = now or datetime.now(UTC)
        effects = Effects()
        changed = 0
        with self.rt.sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            query = due_cases(now, self.batch, dialect, self._skipped(now))
            due = session.scalars(query).all()
            if due and dialect != "postgresql":
                # SQLite: hold the write lock, then read the due cases again under it, so a
                # case change carried out meanwhile (`CaseFlow.update`) is not done twice.
                hold_write_lock(session)
                due = session.scalars(query.execution_options(populate_existing=True)).all()
            for case in due:
                done = self._reconcile_alone(session, case, now)
                if done is None:
                    continue
                if done.outbox or done.events:
                    changed += 1
                    log.info("custody tightening reconciled case=%s commands=%d", case.id,
                             len(done.outbox))
                effects.extend(done)
        effects.carry_out(self.rt.dispatcher, self.rt.bus)
        return changed

    def _skipped(self, now: datetime) -> list[uuid.UUID]:
        """The cases that failed and are not to be tried again yet at `now`."""
        self._failed = {c: at for c, at in self._failed.items() if at > now}
        return list(self._failed)

    def _reconcile_alone(self, session: Session, case: Case, now: datetime) -> Effects | None:
        """`reconcile_custody` in a savepoint of its own: a case that fails is logged by id
        (never its names or places), its changes are rolled back, and it is left out of the
        passes until `RETRY_AFTER` from `now`; None then."""
        case_id = case.id
        try:
            with session.begin_nested():
                return self.flow.reconcile_custody(session, case, ACTOR, now)
        except Exception:  # noqa: BLE001 - one case must not stop every other's
            session.expire(case)
            if len(self._failed) >= MAX_REMEMBERED:
                self._failed.clear()
            self._failed[case_id] = now + RETRY_AFTER
            log.exception("custody tightening of case=%s failed; again in %ds", case_id,
                          RETRY_AFTER.total_seconds())
            return None

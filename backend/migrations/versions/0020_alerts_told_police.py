"""alerts.told_police: whether the police were told of an alert

The police unit of an alert's place read every alert placed in its area, those too that the
routing gave the Veilig Thuis desk alone (an approach, a device's test press, a silent device),
with the victim's and the offender's positions. It now reads one only once the police were told
of it: a police unit among its recipients at the raise, or an escalation step that called the
police carried out since (`backend.auth.scope.routed_unit`). The column keeps that, so that the
scope's SQL filter (`backend.auth.scoping.alert_filter`) can ask it.

Existing alerts: told when a police unit is among their recipients (an exercise endpoint
standing in for one counts, as it does for a new alert), or when their timeline holds an
escalation step to the police unit that had a unit to call (the `escalated` entry the loop
wrote with the step's recipients): what happened, read from the timeline, rather than inferred
from how far the plan stands (an alert acknowledged before the police step and re-alerted
later stands past a step it never carried out). Both are read narrowed by a text match and
decided on the decoded JSON, in batches; the rule is copied here so that the migration does
the same whenever it runs.

Revision ID: 0020_alerts_told_police
Revises: 0019_alerts_confirmed_by
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic import op
import sqlalchemy as sa


revision = "0020_alerts_told_police"
down_revision = "0019_alerts_confirmed_by"
branch_labels = None
depends_on = None

BATCH = 1_000
POLICE = "police_unit"  # the recipient kind, and the escalation target, of a police unit

alerts = sa.table("alerts", sa.column("id", sa.Uuid()), sa.column("recipients", sa.JSON()),
                  sa.column("told_police", sa.Boolean()))
events = sa.table("alert_events", sa.column("alert_id", sa.Uuid()), sa.column("kind", sa.String()),
                  sa.column("detail", sa.JSON()))


def _calls_police(recipients: Any) -> bool:
    """A police unit (or an exercise endpoint standing in for one) among these recipients."""
    return isinstance(recipients, list) and any(
        isinstance(r, dict) and r.get("kind") == POLICE and r.get("code") for r in recipients)


def _mentions_police(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The rows whose JSON holds the text `police_unit` at all (the `_` escaped: not a
    wildcard); the decoded JSON decides."""
    return sa.cast(column, sa.Text).like("%police\\_unit%", escape="\\")


def _told(bind: sa.Connection) -> set[Any]:
    told = {row.id for row in bind.execute(
        sa.select(alerts.c.id, alerts.c.recipients).where(_mentions_police(alerts.c.recipients)))
        if _calls_police(row.recipients)}
    for row in bind.execute(sa.select(events.c.alert_id, events.c.detail).where(
            events.c.kind == "escalated", _mentions_police(events.c.detail))):
        detail = row.detail if isinstance(row.detail, dict) else {}
        if detail.get("target") == POLICE and _calls_police(detail.get("recipients")):
            told.add(row.alert_id)
    return told


def _batches(ids: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(ids, key=str)
    for start in range(0, len(ordered), BATCH):
        yield ordered[start:start + BATCH]


def upgrade() -> None:
    # Not null with a constant default: no rewrite of the table on PostgreSQL.
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("told_police", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    bind = op.get_bind()
    for ids in _batches(_told(bind)):
        bind.execute(alerts.update().where(alerts.c.id.in_(ids)).values(told_police=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("told_police")

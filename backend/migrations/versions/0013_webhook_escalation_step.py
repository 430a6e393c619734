"""webhook_deliveries.escalation_step: an escalation is a delivery of its own

An escalation to the police unit directly goes to the webhook subscriptions as a message of its
own (`DeliveryHook.after_escalation`), with the sequence of the message it escalates. The
delivery row's key becomes (subscription, alert, sequence, escalation step), so that its row
stands next to the row of that message; 0 is no escalation (every existing row).

On PostgreSQL the new key's index is built concurrently, outside the migration's transaction
(alarms write delivery rows while it is built), and takes the old key's place in one short
ALTER TABLE. A build that failed leaves an invalid index of its name behind: run again, the
migration drops it first.

Revision ID: 0013_webhook_escalation_step
Revises: 0012_alerts_case_type_raised
"""
from alembic import op
import sqlalchemy as sa


revision = "0013_webhook_escalation_step"
down_revision = "0012_alerts_case_type_raised"
branch_labels = None
depends_on = None

TABLE = "webhook_deliveries"
OLD_KEY = "uq_webhook_deliveries_subscription_id_alert_id_sequence"
OLD_COLUMNS = ["subscription_id", "alert_id", "sequence"]
NEW_KEY = "uq_webhook_deliveries_message"
NEW_COLUMNS = [*OLD_COLUMNS, "escalation_step"]


def _column() -> sa.Column:
    return sa.Column("escalation_step", sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table(TABLE) as batch_op:
            batch_op.add_column(_column())
            batch_op.drop_constraint(OLD_KEY, type_="unique")
            batch_op.create_unique_constraint(NEW_KEY, NEW_COLUMNS)
        return
    # A constant default: no rewrite of the table, a moment's lock.
    op.add_column(TABLE, _column(), if_not_exists=True)
    with op.get_context().autocommit_block():
        op.drop_index(NEW_KEY, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
        op.create_index(NEW_KEY, TABLE, NEW_COLUMNS, unique=True, postgresql_concurrently=True)
    op.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {OLD_KEY}, "
               f"ADD CONSTRAINT {NEW_KEY} UNIQUE USING INDEX {NEW_KEY}")


def downgrade() -> None:
    # The old key has no room for an escalation's row: they go.
    op.execute(sa.text(f"DELETE FROM {TABLE} WHERE escalation_step <> 0"))
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.drop_constraint(NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(OLD_KEY, OLD_COLUMNS)
        batch_op.drop_column("escalation_step")

"""alerts.confirmed_by: the message id of the event that confirmed an alert

A geofence breach, proximity or approach first raised "possible" and then confirmed upgrades
the open alert instead of raising a second one (`AlertFlow._confirm`). The confirming event's
message id is kept with the alert it upgraded, so that its redelivery neither raises an alert
nor upgrades one again. Existing alerts: none (nothing confirmed them).

Revision ID: 0019_alerts_confirmed_by
Revises: 0018_webhook_message_time
"""
from alembic import op
import sqlalchemy as sa


revision = "0019_alerts_confirmed_by"
down_revision = "0018_webhook_message_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("confirmed_by", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("confirmed_by")

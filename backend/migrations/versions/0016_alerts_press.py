"""alerts.press: a digest of the alarm's bytes, to tell a new press from a retransmission

A device retransmits an alarm with the same id and the same bytes until it hears `received`;
a device that counts its alarm ids from 1 again (after a reset) sends a new press with an old
id. Kept with the alert, the digest of the alarm it was raised from tells the two apart
(`AlertFlow._pressed_again`). Existing alerts: none (an alarm reusing one of their ids, once
they are closed, is raised anew).

Revision ID: 0016_alerts_press
Revises: 0015_webhook_replayed_failure
"""
from alembic import op
import sqlalchemy as sa


revision = "0016_alerts_press"
down_revision = "0015_webhook_replayed_failure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("press", sa.String(12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("press")

"""webhook_deliveries.message_time: the time of the message a delivery carries

A CAP Update or Cancel references every earlier message of its alert by sender, identifier and
`sent` (`backend.police.cap`). The identifier follows from the alert, the sequence and the
escalation step a delivery row has already; `sent` is the message's time, which the alert row
no longer holds once it has moved on (`updated_at` is the latest transition's). Each delivery
row now keeps it, so that every later message's references, and any rendering of it again, are
made from stored data alone.

Existing rows: null. Their messages are left out of later messages' references, but for the
first message of an alert, which is derived from the alert's `raised_at`.

Revision ID: 0018_webhook_message_time
Revises: 0017_subscription_partner
"""
from alembic import op
import sqlalchemy as sa

import backend.db.types


revision = "0018_webhook_message_time"
down_revision = "0017_subscription_partner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: no rewrite of the table, a moment's lock.
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("message_time",
                                      backend.db.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_column("message_time")

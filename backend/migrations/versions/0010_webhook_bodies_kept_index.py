"""index of the webhook bodies still kept, by age

The retention of alert copies (`backend.outbox.retention`) empties the body of every ended
delivery older than `outbox.retention_days`. This partial index holds only the deliveries whose
body is still there, so each pass finds its rows without reading the ones it emptied before.

Revision ID: 0010_webhook_bodies_kept
Revises: 0009_offender_home_location
"""
from alembic import op
import sqlalchemy as sa


revision = "0010_webhook_bodies_kept"
down_revision = "0009_offender_home_location"
branch_labels = None
depends_on = None

KEPT = sa.text("length(body) > 0")


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_body_kept", "webhook_deliveries", ["created_at"],
                    postgresql_where=KEPT, sqlite_where=KEPT)


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_body_kept", table_name="webhook_deliveries")

"""webhook_deliveries.replayed_failure: a replay keeps the police-not-reached warning

A replay puts a failed delivery back to `pending` in a new window. Its failure (rejected or
unreachable) is kept in `replayed_failure` until the delivery gets through, so that the alert's
`police_delivery` stays `unreachable` ("police not reached: phone the control room") while the
replay is still being attempted, as it does while any later message of a failed one is on its
way. Existing rows: none (a replay before this revision cleared the warning, as it did then).

Revision ID: 0015_webhook_replayed_failure
Revises: 0014_api_token_expiry
"""
from alembic import op
import sqlalchemy as sa


revision = "0015_webhook_replayed_failure"
down_revision = "0014_api_token_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("replayed_failure", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_column("replayed_failure")

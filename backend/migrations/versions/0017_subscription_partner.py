"""subscriptions.partner: a subscription that is no police control room

An archive or a partner organisation may take alerts by webhook too. Its failure is recorded
(`failed`) but does not tell the desk "police not reached: phone the control room", and its
delivery does not make up for a police feed message the broker never confirmed. Existing rows:
false (police systems, as every subscription counted until this revision).

Revision ID: 0017_subscription_partner
Revises: 0016_alerts_press
"""
from alembic import op
import sqlalchemy as sa


revision = "0017_subscription_partner"
down_revision = "0016_alerts_press"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("partner", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("partner")

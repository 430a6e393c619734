"""webhook_deliveries.prior_attempts: the attempts made before the delivery window

A replay starts a new delivery window; the retry policy counts the attempts of that window
(`attempts - prior_attempts`), so its first retry waits the shortest backoff again, while
`attempts` stays the number of HTTP attempts in all. Existing rows: 0 (their window counts every
attempt, as before).

Revision ID: 0011_webhook_prior_attempts
Revises: 0010_webhook_bodies_kept
"""
from alembic import op
import sqlalchemy as sa


revision = "0011_webhook_prior_attempts"
down_revision = "0010_webhook_bodies_kept"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("prior_attempts", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_column("prior_attempts")

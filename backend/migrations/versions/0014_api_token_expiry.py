"""api_tokens.expires_at: every bearer token expires

A token is refused from its `expires_at` on, as once revoked. Every token stored before this
migration (revoked ones too) expires the default lifetime of a token (90 days) after the
migration ran, not after it was issued: a police system's token issued long ago keeps working
while its administrator issues it a new one. None is left without an expiry.

Revision ID: 0014_api_token_expiry
Revises: 0013_webhook_escalation_step
"""
from datetime import UTC, datetime, timedelta

from alembic import op
import sqlalchemy as sa
import backend.db.types


revision = "0014_api_token_expiry"
down_revision = "0013_webhook_escalation_step"
branch_labels = None
depends_on = None

TABLE = "api_tokens"
# `tokens.lifetime_s` when this was written; fixed here, so that the migration does the same
# whenever it runs.
EXISTING_TOKENS_LIFETIME = timedelta(days=90)


def _column(nullable: bool) -> sa.Column:
    return sa.Column("expires_at", backend.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.add_column(_column(nullable=True))
    tokens = sa.table(TABLE, _column(nullable=True))
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None))
               .values(expires_at=datetime.now(UTC) + EXISTING_TOKENS_LIFETIME))
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.alter_column("expires_at", existing_type=backend.db.types.UTCDateTime(
            timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.drop_column("expires_at")

"""merge the feature branches; alerts.followed_up_at

Revision ID: 0006_follow_up
Revises: 0002_police, 0003_measures, 0004_cases, 0005_console
"""
from alembic import op
import sqlalchemy as sa
import backend.db.types


revision = "0006_follow_up"
down_revision = ("0002_police", "0003_measures", "0004_cases", "0005_console")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(
            sa.Column("followed_up_at", backend.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    # Alerts raised before this revision had their follow-up inside their own transaction.
    op.execute("UPDATE alerts SET followed_up_at = raised_at")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("followed_up_at")

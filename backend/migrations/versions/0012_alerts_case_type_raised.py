"""index of alerts by case, type and raising time, in place of the one by case

Each supervision pass reads the latest closed alert per device and type of the devices in an
episode (`SupervisionLoop._closed_statements`): the alerts of their cases, of the signals'
types, raised since the oldest report a signal rests on. This index serves that read, so a pass
reads only those alerts, not every closed alert of the fleet raised since a device fell silent
months ago. Every read by case alone uses it as it used `ix_alerts_case_id` (its first column),
which it replaces: an alarm's insert still maintains as many indexes as before.

On PostgreSQL both are built and dropped concurrently, outside the migration's transaction:
alarms are raised while the index is built.

Revision ID: 0012_alerts_case_type_raised
Revises: 0011_webhook_prior_attempts
"""
from alembic import op


revision = "0012_alerts_case_type_raised"
down_revision = "0011_webhook_prior_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # A concurrent build that failed leaves an invalid index of this name behind: this
        # migration, run again, drops it first instead of failing with "already exists".
        op.drop_index("ix_alerts_case_type_raised", table_name="alerts", if_exists=True,
                      postgresql_concurrently=True)
        op.create_index("ix_alerts_case_type_raised", "alerts", ["case_id", "type", "raised_at"],
                        postgresql_concurrently=True)
        op.drop_index("ix_alerts_case_id", table_name="alerts", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_alerts_case_id", "alerts", ["case_id"], postgresql_concurrently=True)
        op.drop_index("ix_alerts_case_type_raised", table_name="alerts",
                      postgresql_concurrently=True)

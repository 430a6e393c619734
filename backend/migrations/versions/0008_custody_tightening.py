"""cases.custody_tightened_release and custody_tightened_until

A custody release tightens a case for the policy's period; these columns record which release
was carried out and when its tightening ends, so that the custody loop can end it (and start a
release dated in the future when its time comes).

Revision ID: 0008_custody_tightening
Revises: 0007_pings_no_geom_index
"""
from alembic import op
import sqlalchemy as sa
import backend.db.types


revision = "0008_custody_tightening"
down_revision = "0007_pings_no_geom_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("custody_tightened_release",
                                      backend.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("custody_tightened_until",
                                      backend.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_cases_custody_tightened_until", ["custody_tightened_until"])
    # Releases already in the past were carried out when they were entered (a release dated in
    # the future was not: it is left for the loop). Their end is not known here (the period is
    # the policy's): due at once, the loop's first pass sets it from the policy, or ends a
    # tightening whose period is over, sending the normal report interval it never got.
    op.execute(
        "UPDATE cases SET custody_tightened_release = released_at, "
        "custody_tightened_until = released_at "
        "WHERE custody_status = 'released' AND released_at <= CURRENT_TIMESTAMP"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_index("ix_cases_custody_tightened_until")
        batch_op.drop_column("custody_tightened_until")
        batch_op.drop_column("custody_tightened_release")

"""offender_homes.location NOT NULL, as the model has it

A home is a point: the first migration left the column nullable, and nothing writes a row
without one (`backend.measures.service.set_home`). A row without a point could only have been
written by hand, and it reads as no home at all (`get_home`), so it is removed: nothing changes
for its case.

Revision ID: 0009_offender_home_location
Revises: 0008_custody_tightening
"""
from alembic import op
import backend.db.types


revision = "0009_offender_home_location"
down_revision = "0008_custody_tightening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM offender_homes WHERE location IS NULL")
    with op.batch_alter_table("offender_homes") as batch_op:
        batch_op.alter_column("location", existing_type=backend.db.types.GeoPoint(),
                              nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("offender_homes") as batch_op:
        batch_op.alter_column("location", existing_type=backend.db.types.GeoPoint(),
                              nullable=True)

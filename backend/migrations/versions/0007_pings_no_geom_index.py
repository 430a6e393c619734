"""drop the spatial index on pings

Nothing queries pings by place: history is read by device and time (the primary key), and
geofences are evaluated in memory. The GiST index made every stored fix about 2.5 times as
expensive for PostgreSQL (measured: 2,000 rows in 27 ms with it, 10.5 ms without).

Revision ID: 0007_pings_no_geom_index
Revises: 0006_follow_up
"""
from alembic import op


revision = "0007_pings_no_geom_index"
down_revision = "0006_follow_up"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pings") as batch_op:
        batch_op.drop_index("ix_pings_geom", postgresql_using="gist")


def downgrade() -> None:
    with op.batch_alter_table("pings") as batch_op:
        batch_op.create_index("ix_pings_geom", ["geom"], unique=False, postgresql_using="gist")

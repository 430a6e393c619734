"""measures: protective measures (zones as legal objects), offender homes, catalogue version

Revision ID: 0003_measures
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import backend.db.types


revision = "0003_measures"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "measures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("geometry", backend.db.types.GeoShape(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("pre_alert_m", sa.Float(), nullable=False),
        sa.Column("valid_from", backend.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", backend.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("time_windows", sa.JSON(), nullable=False),
        sa.Column("authority", sa.String(length=128), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("subject_device_ids", sa.JSON(), nullable=False),
        sa.Column("protected_device_ids", sa.JSON(), nullable=False),
        sa.Column("exceptions", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", backend.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "type in ('exclusion_zone', 'protected_place', 'contact_ban')",
            name=op.f("ck_measures_type"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_measures_case_id_cases"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measures")),
    )
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.create_index("ix_measures_case_id", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_measures_geometry", ["geometry"], unique=False, postgresql_using="gist"
        )
    op.create_table(
        "offender_homes",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("location", backend.db.types.GeoPoint(), nullable=True),
        sa.Column("updated_at", backend.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_offender_homes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_offender_homes")),
    )
    catalog = op.create_table(
        "measure_catalog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure_catalog")),
    )
    op.bulk_insert(catalog, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("measure_catalog")
    op.drop_table("offender_homes")
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.drop_index("ix_measures_geometry", postgresql_using="gist")
        batch_op.drop_index("ix_measures_case_id")
    op.drop_table("measures")

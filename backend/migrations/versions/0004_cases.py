"""cases: parties, directors and named contacts; alert routing and escalation; case log

Revision ID: 0004_cases
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import backend.db.types

revision = "0004_cases"
down_revision = "0001"
branch_labels = None
depends_on = None

CASE_COLUMNS = (
    ("home_vt_desk", 16),
    ("victim_ref", 64),
    ("offender_ref", 64),
    ("process_director", 128),
    ("case_director", 128),
)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name, length in CASE_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("recipients", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("escalation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("escalation_step", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column(
                "next_escalation_at",
                backend.db.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("health_devices", sa.JSON(), nullable=True))
        batch.create_index("ix_alerts_next_escalation_at", ["next_escalation_at"])
    op.create_table(
        "case_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("reachability", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at", backend.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", backend.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "organisation in ('police', 'veilig_thuis', 'vrouwenopvang', 'three_ro', 'om')",
            name=op.f("ck_case_contacts_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            ondelete="CASCADE",
            name=op.f("fk_case_contacts_case_id_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_contacts")),
        sa.UniqueConstraint(
            "case_id",
            "organisation",
            name=op.f("uq_case_contacts_case_id_organisation"),
        ),
    )
    op.create_table(
        "case_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", backend.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            ondelete="CASCADE",
            name=op.f("fk_case_log_case_id_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_log")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_log_case_id_seq")),
    )


def downgrade() -> None:
    op.drop_table("case_log")
    op.drop_table("case_contacts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_next_escalation_at")
        for name in (
            "health_devices",
            "next_escalation_at",
            "escalation_step",
            "escalation",
            "recipients",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("cases") as batch:
        for name, _ in reversed(CASE_COLUMNS):
            batch.drop_column(name)

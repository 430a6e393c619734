"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 18:40:35.390808
"""
from alembic import op
import sqlalchemy as sa
import backend.db.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def create_ping_partitions_sql(months_back: int = 1, months_ahead: int = 3) -> str:
    """SQL that creates the monthly partitions of pings around the current month.

    Fixes outside the created months land in pings_default, so an insert never fails for want
    of a partition; `backend.devices.ping_retention` makes the later months as time goes on.
    """
    return f"""
    DO $$
    DECLARE m date;
    BEGIN
      FOR i IN -{months_back}..{months_ahead} LOOP
        m := (date_trunc('month', now()) + make_interval(months => i))::date;
        EXECUTE format(
          'CREATE TABLE IF NOT EXISTS %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)',
          'pings_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
      END LOOP;
    END $$;
    """


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('created_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_api_tokens_token_sha256'))
    )
    op.create_table('cases',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('reference', sa.String(length=32), nullable=False),
    sa.Column('home_police_unit', sa.String(length=8), nullable=True),
    sa.Column('home_vr_code', sa.String(length=8), nullable=True),
    sa.Column('risk_level', sa.String(length=8), nullable=True),
    sa.Column('custody_status', sa.String(length=16), nullable=False),
    sa.Column('released_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('safety_plan', sa.Text(), nullable=True),
    sa.Column('exercise', sa.Boolean(), nullable=False),
    sa.Column('created_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("custody_status in ('none', 'in_custody', 'released')", name=op.f('ck_cases_custody_status')),
    sa.CheckConstraint("risk_level in ('low', 'medium', 'high')", name=op.f('ck_cases_risk_level')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('reference', name=op.f('uq_cases_reference'))
    )
    op.create_table('pings',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('fix_time', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('acc', sa.Float(), nullable=True),
    sa.Column('vel', sa.Float(), nullable=True),
    sa.Column('batt', sa.SmallInteger(), nullable=True),
    sa.Column('geom', backend.db.types.GeoPoint(), nullable=True),
    sa.PrimaryKeyConstraint('device_id', 'fix_time', name=op.f('pk_pings')),
    # Monthly range partitions on PostgreSQL (see create_ping_partitions_sql); ignored by SQLite.
    postgresql_partition_by='RANGE (fix_time)',
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE TABLE pings_default PARTITION OF pings DEFAULT')
        op.execute(create_ping_partitions_sql())
    with op.batch_alter_table('pings', schema=None) as batch_op:
        batch_op.create_index('ix_pings_geom', ['geom'], unique=False, postgresql_using='gist')

    op.create_table('devices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('owntracks_user', sa.String(length=64), nullable=True),
    sa.Column('owntracks_device', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('report_interval_s', sa.Integer(), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=True),
    sa.Column('battery', sa.SmallInteger(), nullable=True),
    sa.Column('charging', sa.Boolean(), nullable=True),
    sa.Column('tamper', sa.Boolean(), nullable=True),
    sa.Column('firmware', sa.String(length=64), nullable=True),
    sa.Column('last_status_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role in ('victim', 'offender')", name=op.f('ck_devices_role')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_devices_case_id_cases'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('owntracks_user', 'owntracks_device', name=op.f('uq_devices_owntracks_user_owntracks_device'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index('ix_devices_case_id', ['case_id'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=True),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.String(length=80), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('raised_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('device_time', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('acc', sa.Float(), nullable=True),
    sa.Column('fix_time', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('location_source', sa.String(length=16), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('police_unit', sa.String(length=8), nullable=True),
    sa.Column('region', sa.JSON(), nullable=True),
    sa.Column('exercise', sa.Boolean(), nullable=False),
    sa.Column('acknowledged_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_alerts_case_id_cases')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alerts_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('device_id', 'message_id', name=op.f('uq_alerts_device_id_message_id'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_alerts_state_priority', ['state', 'priority'], unique=False)

    op.create_table('alert_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.Uuid(), nullable=False),
    sa.Column('at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_events_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_events'))
    )
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.create_index('ix_alert_events_alert_id', ['alert_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=256), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('qos', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', backend.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', backend.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_outbox_alert_id_alerts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status', ['status', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status')

    op.drop_table('outbox')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_events_alert_id')

    op.drop_table('alert_events')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_state_priority')
        batch_op.drop_index('ix_alerts_case_id')

    op.drop_table('alerts')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index('ix_devices_case_id')

    op.drop_table('devices')
    with op.batch_alter_table('pings', schema=None) as batch_op:
        batch_op.drop_index('ix_pings_geom', postgresql_using='gist')

    op.drop_table('pings')
    op.drop_table('cases')
    op.drop_table('api_tokens')

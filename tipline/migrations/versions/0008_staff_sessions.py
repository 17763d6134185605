"""staff sign-in: sessions in the database, recovery codes, delays per address

staff_session: one row per signed-in browser (the SHA-256 of the cookie's token).
recovery_code: ten argon2-hashed one-time codes per login.
signin_address: failed staff sign-ins per keyed hash of the client address.
app_user: totp_pending (a secret being enrolled), last_failed_at; locked_until goes (no more
hard lock).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:20:00

"""
import sqlalchemy as sa
from alembic import op

import tipline.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_staff_session_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session'))
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_user_id'), ['user_id'], unique=False)

    op.create_table('recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=200), nullable=False),
    sa.Column('used_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_recovery_code_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code'))
    )
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_code_user_id'), ['user_id'], unique=False)

    op.create_table('signin_address',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delay_until', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_signin_address'))
    )

    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_pending', sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column('last_failed_at', tipline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column('locked_until')


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('locked_until', tipline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column('last_failed_at')
        batch_op.drop_column('totp_pending')
    op.drop_table('signin_address')
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_code_user_id'))
    op.drop_table('recovery_code')
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_session_user_id'))
    op.drop_table('staff_session')

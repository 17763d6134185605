"""retention per school: periods from the config file, legal hold, closing and purge times

school.retention_*_days: the config's `retention = {...}` (defaults 365, 30, 90).
tip.closed_at: a closed tip is purged `closed_days` after it; tips closed before this
revision take their last activity as their closing time.
tip.legal_hold: exempts a tip from stale closing and purging (staff set it, audited).
tip.purged_at: when retention crypto-shredded the tip and everything that quotes it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 15:20:00

"""
import sqlalchemy as sa
from alembic import op

import tipline.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('retention_closed_days', sa.Integer(), nullable=False,
                      server_default=sa.text('365'))
        )
        batch_op.add_column(
            sa.Column('retention_phone_days', sa.Integer(), nullable=False,
                      server_default=sa.text('30'))
        )
        batch_op.add_column(
            sa.Column('retention_attachment_days', sa.Integer(), nullable=False,
                      server_default=sa.text('90'))
        )
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('closed_at', tipline.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column('purged_at', tipline.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE tip SET closed_at = last_activity_at WHERE status = 'closed'")


def downgrade() -> None:
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_column('legal_hold')
        batch_op.drop_column('closed_at')
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_column('retention_attachment_days')
        batch_op.drop_column('retention_phone_days')
        batch_op.drop_column('retention_closed_days')

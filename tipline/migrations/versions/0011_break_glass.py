"""break-glass: a school may let two admins reveal a student's number

school.break_glass: off unless the config file turns it on.
reveal: one request per row, its reason sealed like a note and the number, once decrypted by the
worker, sealed under its own data key that is deleted when the requester has seen it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:10:00

"""
import sqlalchemy as sa
from alembic import op

import tipline.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('break_glass', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table('reveal',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tip_id', sa.String(length=32), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data_key_id', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.LargeBinary(), nullable=True),
    sa.Column('number_key_id', sa.String(length=32), nullable=True),
    sa.Column('number', sa.LargeBinary(), nullable=True),
    sa.Column('requested_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revealed_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shown_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['app_user.id'], name=op.f('fk_reveal_approved_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id'], name=op.f('fk_reveal_data_key_id_data_key'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['number_key_id'], ['data_key.id'], name=op.f('fk_reveal_number_key_id_data_key'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['requested_by'], ['app_user.id'], name=op.f('fk_reveal_requested_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tip_id'], ['tip.id'], name=op.f('fk_reveal_tip_id_tip'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reveal'))
    )
    with op.batch_alter_table('reveal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reveal_tip_id'), ['tip_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reveal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reveal_tip_id'))
    op.drop_table('reveal')
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_column('break_glass')

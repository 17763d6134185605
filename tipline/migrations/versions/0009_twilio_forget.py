"""messages to delete at Twilio once final

twilio_forget: one row per message Twilio still holds (an outbox row, or an inbound text's
MessageSid sealed under its own data key), with when to ask again; the worker's sweeper
deletes the row once Twilio has forgotten the message.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00

"""
import sqlalchemy as sa
from alembic import op

import tipline.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('twilio_forget',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('outbound_id', sa.String(length=32), nullable=True),
    sa.Column('tip_id', sa.String(length=32), nullable=True),
    sa.Column('data_key_id', sa.String(length=32), nullable=True),
    sa.Column('sid', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('not_before', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id'], name=op.f('fk_twilio_forget_data_key_id_data_key'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['outbound_id'], ['outbound_message.id'], name=op.f('fk_twilio_forget_outbound_id_outbound_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tip_id'], ['tip.id'], name=op.f('fk_twilio_forget_tip_id_tip'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_twilio_forget')),
    sa.UniqueConstraint('outbound_id', name=op.f('uq_twilio_forget_outbound_id'))
    )
    with op.batch_alter_table('twilio_forget', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_twilio_forget_not_before'), ['not_before'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('twilio_forget', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_twilio_forget_not_before'))
    op.drop_table('twilio_forget')

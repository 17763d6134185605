"""flood mode

flood: one row per flood at a school (started, last over the rate, digests, ended and by whom).
flood_tip: the tips that arrived during a flood and the digest that reported each.
tip: fresh_session (a web tip from a browser session that sent none before); routed_at indexed.
school: flood (the config's per-school thresholds).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 17:00:00

"""
import sqlalchemy as sa
from alembic import op

import tipline.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flood',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('started_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=120), nullable=False),
    sa.Column('last_over_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_digest_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('digests', sa.Integer(), nullable=False),
    sa.Column('tips', sa.Integer(), nullable=False),
    sa.Column('critical', sa.Integer(), nullable=False),
    sa.Column('ended_at', tipline.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['school_id'], ['school.id'], name=op.f('fk_flood_school_id_school'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flood'))
    )
    with op.batch_alter_table('flood', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flood_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flood_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flood_next_digest_at'), ['next_digest_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flood_ended_at'), ['ended_at'], unique=False)

    op.create_table('flood_tip',
    sa.Column('flood_id', sa.String(length=32), nullable=False),
    sa.Column('tip_id', sa.String(length=32), nullable=False),
    sa.Column('added_at', tipline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('critical', sa.Boolean(), nullable=False),
    sa.Column('named', sa.Boolean(), nullable=False),
    sa.Column('urgency', sa.Integer(), nullable=False),
    sa.Column('digest', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['flood_id'], ['flood.id'], name=op.f('fk_flood_tip_flood_id_flood'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tip_id'], ['tip.id'], name=op.f('fk_flood_tip_tip_id_tip'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flood_id', 'tip_id', name=op.f('pk_flood_tip'))
    )
    with op.batch_alter_table('flood_tip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flood_tip_digest'), ['digest'], unique=False)

    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fresh_session', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_tip_routed_at'), ['routed_at'], unique=False)

    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('flood', sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_column('flood')
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tip_routed_at'))
        batch_op.drop_column('fresh_session')
    with op.batch_alter_table('flood_tip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flood_tip_digest'))
    op.drop_table('flood_tip')
    with op.batch_alter_table('flood', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flood_ended_at'))
        batch_op.drop_index(batch_op.f('ix_flood_next_digest_at'))
        batch_op.drop_index(batch_op.f('ix_flood_started_at'))
        batch_op.drop_index(batch_op.f('ix_flood_school_id'))
    op.drop_table('flood')

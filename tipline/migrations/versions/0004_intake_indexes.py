"""drop two indexes every first text paid for and nothing used

ix_tip_school_id: the (school_id, code) unique key covers it. A first text probes free codes
with `tip.school_id = $1 AND tip.code = $2` in a prepared statement; with both indexes, the
generic plan could pick the one on school_id alone and read every tip of the school for
each probe.

ix_data_key_master_key_id: rotation looks for keys *not* under the current master key, which
a btree cannot answer; it walks the primary key instead.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 20:05:00

"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tip_school_id'))
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_key_master_key_id'))


def downgrade() -> None:
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_data_key_master_key_id'), ['master_key_id'], unique=False
        )
    with op.batch_alter_table('tip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tip_school_id'), ['school_id'], unique=False)

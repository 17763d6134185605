"""incidents merge only clear events: signals said, a fixed window, schools' own places

incident.signals: "now" and "hurt" once a tip of the incident said so, so a later tip that
says it first pages again. incident.opened_at is indexed: the window is measured from it.
school.places: the school's own place names, from the configuration file.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09 10:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('signals', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.create_index(batch_op.f('ix_incident_opened_at'), ['opened_at'], unique=False)
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.alter_column('signals', server_default=None)
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('places', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.alter_column('places', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('school', schema=None) as batch_op:
        batch_op.drop_column('places')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_opened_at'))
        batch_op.drop_column('signals')

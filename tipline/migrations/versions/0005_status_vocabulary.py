"""one status vocabulary: Twilio's `canceled`

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:40:00

"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE outbound_message SET status = 'canceled' WHERE status = 'cancelled'")


def downgrade() -> None:
    op.execute("UPDATE outbound_message SET status = 'cancelled' WHERE status = 'canceled'")

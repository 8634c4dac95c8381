"""segments: a covering index for "purchased within N days, at least X" per contact

Revision ID: 000f
Revises: 000e
Create Date: 2026-12-01 14:25:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '000f'
down_revision = '000e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_contact_id_placed_at_paid',
                              ['contact_id', 'placed_at', 'status', 'revenue', 'backfill'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_contact_id_placed_at_paid')

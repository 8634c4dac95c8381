"""run source total: the source's own record count, taken when a run starts its walk

Revision ID: 000a
Revises: 0009
Create Date: 2026-12-01 10:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '000a'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_runs') as batch_op:
        batch_op.add_column(sa.Column('source_total', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('import_runs') as batch_op:
        batch_op.drop_column('source_total')

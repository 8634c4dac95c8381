"""contacts: a covering index for search (list, id, normalised email, name), so a search
that scans a list reads the index, not the rows (SQLite; empty on PostgreSQL)

Revision ID: 000k
Revises: 000j
Create Date: 2026-12-01 20:15:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '000k'
down_revision = '000j'
branch_labels = None
depends_on = None


def upgrade():
    # PostgreSQL's planner scans the table for these searches: there the index holds no rows.
    op.create_index('ix_contacts_list_search', 'contacts',
                    ['list_id', 'id', 'email_norm', 'name'],
                    postgresql_where=sa.text('false'))


def downgrade():
    op.drop_index('ix_contacts_list_search', table_name='contacts')

"""visitor identities: an index on contact_id (contact deletes and erasures look them up)

Revision ID: 000g
Revises: 000s
Create Date: 2026-12-01 15:35:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '000g'
down_revision = '000s'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_visitor_identities_contact_id', 'visitor_identities', ['contact_id'])


def downgrade():
    op.drop_index('ix_visitor_identities_contact_id', table_name='visitor_identities')

"""oauth apps: the team's OAuth client id and encrypted secret per provider

Revision ID: 0003_oauth_apps
Revises: 0002_imports
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
import webapp.models.base  # noqa: F401  (custom column types)

# revision identifiers, used by Alembic.
revision = '0003_oauth_apps'
down_revision = '0002_imports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('oauth_apps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('created_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', webapp.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_apps')),
    sa.UniqueConstraint('provider', name=op.f('uq_oauth_apps_provider'))
    )


def downgrade():
    op.drop_table('oauth_apps')

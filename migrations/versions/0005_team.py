"""team: deactivating users and single-use set-password links

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:45:00.000000

"""
from alembic import op
import sqlalchemy as sa
import webapp.models.base  # noqa: F401  (custom column types)

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.add_column(sa.Column('password_token_hash', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('password_token_expires_at',
                                      webapp.models.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_password_token_hash'),
                                          ['password_token_hash'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_password_token_hash'), type_='unique')
        batch_op.drop_column('password_token_expires_at')
        batch_op.drop_column('password_token_hash')
        batch_op.drop_column('active')

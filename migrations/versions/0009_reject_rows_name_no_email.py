"""rejected rows: the person's name, and skipped rows (no email) kept as reason no_email

Revision ID: 0009
Revises: 0006_consent
Create Date: 2026-12-01 10:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0006_consent'
branch_labels = None
depends_on = None

# After 0006_consent, which added no_marketing_consent.
OLD = ('syntax_error', 'invalid_domain', 'already_in_queue', 'blacklisted', 'policy_failure',
       'opted_out_at_source', 'no_marketing_consent', 'mismatched_criteria')
NEW = ('syntax_error', 'invalid_domain', 'already_in_queue', 'blacklisted', 'policy_failure',
       'opted_out_at_source', 'no_marketing_consent', 'mismatched_criteria', 'no_email')


def _check(values):
    return "reason IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade():
    with op.batch_alter_table('rejected_rows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.drop_constraint(op.f('ck_rejected_rows_reason'), type_='check')
        batch_op.create_check_constraint(op.f('ck_rejected_rows_reason'), _check(NEW))


def downgrade():
    op.execute("DELETE FROM rejected_rows WHERE reason = 'no_email'")
    with op.batch_alter_table('rejected_rows', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_rejected_rows_reason'), type_='check')
        batch_op.create_check_constraint(op.f('ck_rejected_rows_reason'), _check(OLD))
        batch_op.drop_column('name')

"""consent: per-import consent filter and field, no_marketing_consent rejects, ledger author

Revision ID: 0006_consent
Revises: 0005
Create Date: 2026-12-01 10:45:00.000000

Existing Shopify and Magento imports take only people subscribed at the source (the stores'
default: they report marketing consent); CRM imports keep taking everyone who has not opted out.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0006_consent'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_REASONS = ("syntax_error", "invalid_domain", "already_in_queue", "blacklisted",
               "policy_failure", "opted_out_at_source", "mismatched_criteria")
NEW_REASONS = OLD_REASONS[:6] + ("no_marketing_consent",) + OLD_REASONS[6:]


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    with op.batch_alter_table('recurring_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_filter', sa.String(length=16), nullable=False,
                                      server_default='everyone'))
        batch_op.add_column(sa.Column('consent_field', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.create_check_constraint(
            op.f('ck_recurring_imports_consent_filter'), "consent_filter IN ('everyone', 'subscribed')")
    with op.batch_alter_table('recurring_imports', schema=None) as batch_op:
        batch_op.alter_column('consent_filter', server_default=None)
        batch_op.alter_column('consent_field', server_default=None)
    op.execute(
        "UPDATE recurring_imports SET consent_filter = 'subscribed' WHERE integration_id IN "
        "(SELECT id FROM integrations WHERE provider IN ('shopify', 'magento'))"
    )

    with op.batch_alter_table('rejected_rows', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_rejected_rows_reason'), type_='check')
        batch_op.create_check_constraint(op.f('ck_rejected_rows_reason'), _in('reason', NEW_REASONS))

    with op.batch_alter_table('consent_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=False,
                                      server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_consent_ledger_user_id_users'), 'users',
                                    ['user_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('consent_ledger', schema=None) as batch_op:
        batch_op.alter_column('note', server_default=None)


def downgrade():
    with op.batch_alter_table('consent_ledger', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_consent_ledger_user_id_users'),
                                 type_='foreignkey')
        batch_op.drop_column('note')
        batch_op.drop_column('user_id')
    op.execute("DELETE FROM rejected_rows WHERE reason = 'no_marketing_consent'")
    with op.batch_alter_table('rejected_rows', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_rejected_rows_reason'), type_='check')
        batch_op.create_check_constraint(op.f('ck_rejected_rows_reason'), _in('reason', OLD_REASONS))
    with op.batch_alter_table('recurring_imports', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_recurring_imports_consent_filter'), type_='check')
        batch_op.drop_column('consent_field')
        batch_op.drop_column('consent_filter')

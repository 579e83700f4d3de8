"""login_failures: failed password logins, for login throttling and lockout

Counted in the database so that every API process (``api_workers``) sees the
same counts: a client spreading its guesses over several connections meets
one limit, and a restart does not reset it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('subject', 'source', name=op.f('pk_login_failures')),
    )
    op.create_index(op.f('ix_login_failures_last_failure'), 'login_failures', ['last_failure'])


def downgrade() -> None:
    op.drop_index(op.f('ix_login_failures_last_failure'), table_name='login_failures')
    op.drop_table('login_failures')

"""servers.admin_password: the password an instance posts to the metadata API

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('servers') as batch:
        batch.add_column(sa.Column('admin_password', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('servers') as batch:
        batch.drop_column('admin_password')

"""subnet pools and address scopes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _std(name: str) -> list[sa.Column]:
    return [
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.String(length=20), nullable=False),
        sa.Column('updated_at', sa.String(length=20), nullable=False),
        sa.Column('revision_number', sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'address_scopes', *_std('address_scopes'),
        sa.Column('ip_version', sa.Integer(), nullable=False),
        sa.Column('shared', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_address_scopes')),
    )
    op.create_index(op.f('ix_address_scopes_project_id'), 'address_scopes', ['project_id'])
    op.create_index(op.f('ix_address_scopes_name'), 'address_scopes', ['name'])
    op.create_table(
        'subnetpools', *_std('subnetpools'),
        sa.Column('ip_version', sa.Integer(), nullable=False),
        sa.Column('prefixes', sa.JSON(), nullable=False),
        sa.Column('default_prefixlen', sa.Integer(), nullable=False),
        sa.Column('min_prefixlen', sa.Integer(), nullable=False),
        sa.Column('max_prefixlen', sa.Integer(), nullable=False),
        sa.Column('default_quota', sa.Integer(), nullable=True),
        sa.Column('shared', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('address_scope_id', sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subnetpools')),
    )
    op.create_index(op.f('ix_subnetpools_project_id'), 'subnetpools', ['project_id'])
    op.create_index(op.f('ix_subnetpools_name'), 'subnetpools', ['name'])
    op.create_index(op.f('ix_subnetpools_address_scope_id'), 'subnetpools', ['address_scope_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_subnetpools_address_scope_id'), table_name='subnetpools')
    op.drop_index(op.f('ix_subnetpools_name'), table_name='subnetpools')
    op.drop_index(op.f('ix_subnetpools_project_id'), table_name='subnetpools')
    op.drop_table('subnetpools')
    op.drop_index(op.f('ix_address_scopes_name'), table_name='address_scopes')
    op.drop_index(op.f('ix_address_scopes_project_id'), table_name='address_scopes')
    op.drop_table('address_scopes')

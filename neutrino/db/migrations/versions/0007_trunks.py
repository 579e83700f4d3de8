"""trunks and subports

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'trunks',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.String(length=20), nullable=False),
        sa.Column('updated_at', sa.String(length=20), nullable=False),
        sa.Column('revision_number', sa.BigInteger(), nullable=False),
        sa.Column('admin_state_up', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('port_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_trunks_port_id_ports'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trunks')),
        sa.UniqueConstraint('port_id', name=op.f('uq_trunks_port_id')),
    )
    op.create_index(op.f('ix_trunks_project_id'), 'trunks', ['project_id'])
    op.create_index(op.f('ix_trunks_name'), 'trunks', ['name'])
    op.create_table(
        'subports',
        sa.Column('port_id', sa.String(length=36), nullable=False),
        sa.Column('trunk_id', sa.String(length=36), nullable=False),
        sa.Column('segmentation_type', sa.String(length=32), nullable=False),
        sa.Column('segmentation_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_subports_port_id_ports'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['trunk_id'], ['trunks.id'], name=op.f('fk_subports_trunk_id_trunks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('port_id', name=op.f('pk_subports')),
        sa.UniqueConstraint('trunk_id', 'segmentation_type', 'segmentation_id',
                            name=op.f('uq_subports_trunk_id')),
    )
    op.create_index(op.f('ix_subports_trunk_id'), 'subports', ['trunk_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_subports_trunk_id'), table_name='subports')
    op.drop_table('subports')
    op.drop_index(op.f('ix_trunks_name'), table_name='trunks')
    op.drop_index(op.f('ix_trunks_project_id'), table_name='trunks')
    op.drop_table('trunks')

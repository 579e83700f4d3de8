"""RBAC policies

``rbac_policies`` holds who may use which object (Neutron's RBAC).  The
wildcard rows that ``shared`` and ``router:external`` stand for are written
for the networks that already have those flags, so that an upgraded database
shows the same policies a fresh one would.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
import uuid

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rbac_policies',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('object_type', sa.String(length=32), nullable=False),
        sa.Column('object_id', sa.String(length=36), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('target_project', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rbac_policies')),
        sa.UniqueConstraint('object_type', 'object_id', 'action', 'target_project',
                            name=op.f('uq_rbac_policies_object_type')),
    )
    op.create_index(op.f('ix_rbac_policies_project_id'), 'rbac_policies', ['project_id'])
    op.create_index('ix_rbac_policies_target', 'rbac_policies',
                    ['target_project', 'object_type', 'action', 'object_id'])
    conn = op.get_bind()
    nets = sa.table('networks', sa.column('id'), sa.column('project_id'), sa.column('shared'),
                    sa.column('external'))
    rows = []
    for net_id, project_id, shared, external in conn.execute(
            sa.select(nets.c.id, nets.c.project_id, nets.c.shared, nets.c.external)):
        for flag, action in ((shared, 'access_as_shared'), (external, 'access_as_external')):
            if flag:
                rows.append({'id': str(uuid.uuid4()), 'project_id': project_id or '', 'object_type': 'network',
                             'object_id': net_id, 'action': action, 'target_project': '*'})
    if rows:
        policies = sa.table('rbac_policies', *(sa.column(c) for c in rows[0]))
        op.bulk_insert(policies, rows)


def downgrade() -> None:
    op.drop_index('ix_rbac_policies_target', table_name='rbac_policies')
    op.drop_index(op.f('ix_rbac_policies_project_id'), table_name='rbac_policies')
    op.drop_table('rbac_policies')

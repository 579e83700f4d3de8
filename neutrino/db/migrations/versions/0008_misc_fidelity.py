"""API fidelity round two (agents, ports, dhcp options)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Networks / routers an admin took off an agent by hand: automatic scheduling leaves them alone.
    op.create_table('dhcp_unscheduled_networks',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'],
                            name=op.f('fk_dhcp_unscheduled_networks_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', name=op.f('pk_dhcp_unscheduled_networks'))
    )
    op.create_table('l3_unscheduled_routers',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'],
                            name=op.f('fk_l3_unscheduled_routers_router_id_routers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', name=op.f('pk_l3_unscheduled_routers'))
    )


def downgrade() -> None:
    op.drop_table('l3_unscheduled_routers')
    op.drop_table('dhcp_unscheduled_networks')

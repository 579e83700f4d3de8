"""router_ports: the ports a router owns, as the router service recorded them

Until now a router's interfaces and gateway were found by scanning ports for
``device_id`` = the router and a ``network:router_*`` owner, fields a port's
owner can write.  Existing routers get their records from the ports the
router service made: the gateway named by ``routers.gw_port_id``, and
interface ports of the router's own project (or of no project).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                     "network:ha_router_replicated_interface")


def upgrade() -> None:
    op.create_table(
        'router_ports',
        sa.Column('router_id', sa.String(length=36), nullable=False),
        sa.Column('port_id', sa.String(length=36), nullable=False),
        sa.Column('port_type', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['router_id'], ['routers.id'], name=op.f('fk_router_ports_router_id_routers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['port_id'], ['ports.id'], name=op.f('fk_router_ports_port_id_ports'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('router_id', 'port_id', name=op.f('pk_router_ports')),
        sa.UniqueConstraint('port_id', name=op.f('uq_router_ports_port_id')),
    )
    conn = op.get_bind()
    owners = ", ".join(f"'{o}'" for o in _INTERFACE_OWNERS)
    conn.execute(sa.text(
        "INSERT INTO router_ports (router_id, port_id, port_type) "
        "SELECT r.id, p.id, 'network:router_gateway' FROM routers r JOIN ports p ON p.id = r.gw_port_id"))
    conn.execute(sa.text(
        "INSERT INTO router_ports (router_id, port_id, port_type) "
        "SELECT r.id, p.id, p.device_owner FROM routers r JOIN ports p ON p.device_id = r.id "
        f"WHERE p.device_owner IN ({owners}) AND (p.project_id = r.project_id OR p.project_id = '')"))


def downgrade() -> None:
    op.drop_table('router_ports')

"""Cross-project checks (issue 13, "keep it closed"): the objects of project
``p-demo`` read, updated, deleted and referenced by another project's member
(``other``) and reader (``other-reader``), and changed by demo's own reader.

What Neutron does, and so what is asserted here:

* an object the caller cannot see is a 404 of its own type
  (``NetworkNotFound``, ...) for GET, PUT, DELETE, its tags and its
  sub-resources; lists leave it out whatever the filters or ``fields=``;
* an object the caller can see but not change (a shared or external network,
  the caller's project seen by a reader) is a 403 ``PolicyNotAuthorized``;
* a request of another project that names one of demo's objects fails and
  changes nothing (every table, the change feed included, compared before and
  after).

One world is built per module (building it costs ~0.3 s): every check here is
a request that must fail, and a check that finds a hole names the tables it
changed and removes the rows it created, so the other checks still see the
world as built.  The checks that create something on purpose (the positive
controls) remove it again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from neutrino import config
from neutrino.db import tables
from neutrino.db.engine import Database
from tests.api.conftest import BASE_OVERRIDES, Api, error
from tests.api.l3_helpers import add_subnet, floating_ip, router, set_gateway

#: Another project's member and reader.
STRANGERS = ("other", "other-reader")


@dataclass
class World:
    api: Api
    ids: dict[str, str] = field(default_factory=dict)
    objs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.ids[name], self.objs[name] = obj["id"], obj
        return obj


def _build(api: Api) -> World:
    """demo's objects of every type, plus an external network (admin's) and other's own topology."""
    w = World(api)
    ext = w.add("ext_net", api.network(name="ext-net", **{"router:external": True}))
    w.add("ext_subnet", api.subnet(ext["id"], "172.30.0.0/24", name="ext-subnet"))
    net = w.add("net", api.network("demo", name="demo-net"))
    sub = w.add("subnet", api.subnet(net["id"], "10.10.0.0/24", "demo", name="demo-subnet"))
    # A shared network of demo's (only an admin may share one).
    shared = w.add("shared_net", api.network(name="demo-shared", project_id="p-demo", shared=True))
    w.add("shared_subnet", api.subnet(shared["id"], "10.11.0.0/24", "demo", name="demo-shared-subnet"))
    w.add("shared_port", api.port(shared["id"], "demo", name="demo-shared-port"))
    sg = w.add("sg", api.sg("demo", name="demo-sg"))
    w.add(
        "rule",
        api.create(
            "security-group-rules",
            "security_group_rule",
            "demo",
            security_group_id=sg["id"],
            direction="ingress",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
        ),
    )
    [default] = api.list("security-groups", "demo", "name=default")
    w.add("default_sg", default)
    w.add("port_a", api.port(net["id"], "demo", name="demo-port-a", security_groups=[sg["id"]]))
    w.add("port_b", api.port(net["id"], "demo", name="demo-port-b"))
    w.add("port_c", api.port(net["id"], "demo", name="demo-port-c"))  # no floating IP, no forwarding
    r = router(api, "demo", name="demo-router")
    set_gateway(api, r["id"], ext["id"])
    add_subnet(api, r["id"], sub["id"])
    w.add("router", api.show("routers", "router", r["id"], "demo"))
    [w.ids["router_iface"]] = [
        p["id"]
        for p in api.list("ports", "admin", f"device_id={r['id']}")
        if p["device_owner"] == "network:router_interface"
    ]
    [w.ids["router_gw"]] = [
        p["id"]
        for p in api.list("ports", "admin", f"device_id={r['id']}")
        if p["device_owner"] == "network:router_gateway"
    ]
    w.add("fip_a", floating_ip(api, ext["id"], "demo", port_id=w.ids["port_a"], description="demo-fip-a"))
    fip_b = w.add("fip_b", floating_ip(api, ext["id"], "demo", description="demo-fip-b"))
    w.add(
        "pf",
        api.ok(
            api.post(
                f"floatingips/{fip_b['id']}/port_forwardings",
                {
                    "port_forwarding": {
                        "internal_port_id": w.ids["port_b"],
                        "internal_ip_address": w.objs["port_b"]["fixed_ips"][0]["ip_address"],
                        "internal_port": 22,
                        "external_port": 2222,
                        "protocol": "tcp",
                        "description": "demo-pf",
                    }
                },
                "demo",
            ),
            201,
        )["port_forwarding"],
    )
    for coll, name in (
        ("networks", "net"),
        ("subnets", "subnet"),
        ("ports", "port_a"),
        ("routers", "router"),
        ("floatingips", "fip_a"),
        ("security-groups", "sg"),
    ):
        api.ok(api.put(f"{coll}/{w.ids[name]}/tags/demo-tag", None, "demo"), 201)
    api.ok(api.put("quotas/p-demo", {"quota": {"network": 20}}))
    # other's own topology, to name demo's objects from.
    onet = w.add("o_net", api.network("other", name="other-net"))
    osub = w.add("o_subnet", api.subnet(onet["id"], "10.20.0.0/24", "other", name="other-subnet"))
    w.add("o_port", api.port(onet["id"], "other", name="other-port"))
    w.add("o_shared_port", api.port(shared["id"], "other", name="other-port-on-demo-shared"))
    w.add("o_sg", api.sg("other", name="other-sg"))
    orouter = w.add("o_router", router(api, "other", name="other-router"))
    set_gateway(api, orouter["id"], ext["id"], "other")
    add_subnet(api, orouter["id"], osub["id"], "other")
    w.add("o_fip", floating_ip(api, ext["id"], "other"))
    for name in ("port_a", "port_b", "port_c", "o_port"):
        w.ids[f"{name}_ip"] = w.objs[name]["fixed_ips"][0]["ip_address"]
    o_fip2 = w.add("o_fip2", floating_ip(api, ext["id"], "other"))
    w.add(
        "o_pf",
        api.ok(
            api.post(
                f"floatingips/{o_fip2['id']}/port_forwardings",
                {
                    "port_forwarding": {
                        "internal_port_id": w.ids["o_port"],
                        "internal_ip_address": w.ids["o_port_ip"],
                        "internal_port": 22,
                        "external_port": 2222,
                        "protocol": "tcp",
                    }
                },
                "other",
            ),
            201,
        )["port_forwarding"],
    )
    return w


@pytest.fixture(scope="module")
def world(api_databases: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One API and one world for the module (every test here uses only this)."""
    tmp: Path = tmp_path_factory.mktemp("cross-project")
    api = Api(config.defaults(tmp).with_overrides(BASE_OVERRIDES), Database(api_databases.clone(tmp)))
    try:
        yield _build(api)
    finally:
        api.close()


def _fill(template: Any, ids: dict[str, str]) -> Any:
    """``template`` with every ``{name}`` in its strings replaced by the world's ids."""
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


def _keys(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    with db.read() as conn:
        return {
            table.name: set(conn.execute(select(*table.primary_key.columns)).all())
            for table in tables.metadata.sorted_tables
        }


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the change feed included), order-independent."""
    with db.read() as conn:
        return {
            table.name: sorted(tuple(repr(v) for v in row) for row in conn.execute(select(table)))
            for table in tables.metadata.sorted_tables
        }


def _drop_new_rows(db: Database, before: dict[str, set[tuple[Any, ...]]]) -> None:
    """Remove the rows a request that should have failed created (so a hole found
    by one check does not leak into the next)."""
    after = _keys(db)
    with db.write() as uow:
        for table in reversed(tables.metadata.sorted_tables):
            cols = list(table.primary_key.columns)
            for key in after[table.name] - before[table.name]:
                uow.conn.execute(delete(table).where(*(c == v for c, v in zip(cols, key, strict=True))))


class Unchanged:
    """``with Unchanged(db): ...``: the block changes no row of any table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Unchanged:
        self.snapshot = _snapshot(self.db)
        self.keys = _keys(self.db)
        return self

    def __exit__(self, *exc: Any) -> None:
        after = _snapshot(self.db)
        if after != self.snapshot:
            _drop_new_rows(self.db, self.keys)
        if exc[0] is None:
            changed = sorted(name for name in after if after[name] != self.snapshot[name])
            assert not changed, f"rows changed in {changed}"


# --------------------------------------------------------------------------------------------
# The resource table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """One of demo's objects: where it lives and how another project may try to reach it."""

    name: str  # World id key
    path: str  # its URL ({names} filled from the world)
    collection: str | None  # its list URL (None: the list is the parent's 404)
    not_found: str  # the 404's type for a caller who cannot see it
    update: dict[str, Any] | None = None  # a PUT body (None: not updatable at all)
    filters: tuple[str, ...] = ()  # attributes to filter its list by
    tags: bool = False
    reader_sees: bool = True  # demo's reader sees it (the gateway port has no project)
    queries: tuple[str, ...] = ()  # more list queries ({names} filled from the world)


KINDS = [
    Kind(
        "net",
        "networks/{net}",
        "networks",
        "NetworkNotFound",
        {"network": {"name": "x"}},
        ("name", "tags", "shared"),
        tags=True,
    ),
    Kind(
        "subnet",
        "subnets/{subnet}",
        "subnets",
        "SubnetNotFound",
        {"subnet": {"name": "x"}},
        ("name", "network_id", "cidr"),
        tags=True,
    ),
    Kind(
        "port_a",
        "ports/{port_a}",
        "ports",
        "PortNotFound",
        {"port": {"name": "x"}},
        ("name", "network_id", "mac_address", "security_groups"),
        tags=True,
        queries=(
            "fixed_ips=subnet_id={subnet}",
            "fixed_ips=ip_address={port_a_ip}",
            "ip_address_substr=10.10.0",
            "tags=demo-tag",
            "tags-any=demo-tag",
        ),
    ),
    Kind(
        "shared_port", "ports/{shared_port}", "ports", "PortNotFound", {"port": {"name": "x"}}, ("name", "network_id")
    ),
    Kind(
        "router_iface",
        "ports/{router_iface}",
        "ports",
        "PortNotFound",
        {"port": {"name": "x"}},
        ("device_id", "device_owner"),
    ),
    Kind(
        "router_gw",
        "ports/{router_gw}",
        "ports",
        "PortNotFound",
        {"port": {"name": "x"}},
        ("device_id", "network_id"),
        reader_sees=False,
    ),
    Kind("router", "routers/{router}", "routers", "RouterNotFound", {"router": {"name": "x"}}, ("name",), tags=True),
    Kind(
        "fip_a",
        "floatingips/{fip_a}",
        "floatingips",
        "FloatingIPNotFound",
        {"floatingip": {"description": "x"}},
        ("floating_ip_address", "port_id", "router_id", "description"),
        tags=True,
    ),
    Kind(
        "sg",
        "security-groups/{sg}",
        "security-groups",
        "SecurityGroupNotFound",
        {"security_group": {"name": "x"}},
        ("name",),
        tags=True,
    ),
    Kind(
        "default_sg",
        "security-groups/{default_sg}",
        "security-groups",
        "SecurityGroupNotFound",
        {"security_group": {"description": "x"}},
        ("name",),
    ),
    Kind(
        "rule",
        "security-group-rules/{rule}",
        "security-group-rules",
        "SecurityGroupRuleNotFound",
        None,
        ("security_group_id", "port_range_min"),
    ),
    Kind(
        "pf",
        "floatingips/{fip_b}/port_forwardings/{pf}",
        None,
        "FloatingIPNotFound",
        {"port_forwarding": {"description": "x"}},
    ),
]
KIND_IDS = [k.name for k in KINDS]


#: The key of one object of each collection.
KEYS = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "routers": "router",
    "floatingips": "floatingip",
    "security-groups": "security_group",
    "security-group-rules": "security_group_rule",
}
#: demo's objects no other project may see (their shared and external networks aside).
HIDDEN = (*(k.name for k in KINDS if k.name != "pf"), "port_b", "port_c", "fip_b")


def _list_queries(w: World, kind: Kind) -> list[str]:
    """List queries that would find the object if it were visible (ids, names, its attributes)."""
    assert kind.collection is not None
    obj = w.api.show(kind.collection, KEYS[kind.collection], w.ids[kind.name])  # the admin's view
    oid = w.ids[kind.name]
    out = [
        "",
        f"id={oid}",
        f"id={oid}&fields=id",
        "fields=id",
        "fields=id&fields=name",
        "project_id=p-demo",
        "tenant_id=p-demo",
        f"project_id=p-demo&id={oid}",
    ]
    for attr in kind.filters:
        value = obj[attr]
        out.append(f"{attr}={value[0] if isinstance(value, list) else value}")
    return out + [_fill(q, w.ids) for q in kind.queries]


# --------------------------------------------------------------------------------------------
# read / update / delete by another project
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STRANGERS)
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_read_is_hidden(world: World, kind: Kind, who: str) -> None:
    api, ids = world.api, world.ids
    path = _fill(kind.path, ids)
    for suffix in ("", "?fields=id", "?fields=id&fields=project_id", "?fields=name"):
        error(api.get(path + suffix, who), 404, kind.not_found)
    # No existence oracle: the answer is the one for an id that does not exist.
    nobody = str(uuid.uuid4())
    hidden_answer = api.get(path, who).json()["NeutronError"]
    absent_answer = api.get(path.replace(ids[kind.name], nobody), who).json()["NeutronError"]
    assert hidden_answer["message"].replace(ids[kind.name], nobody) == absent_answer["message"]
    if kind.tags:
        error(api.get(f"{path}/tags", who), 404, kind.not_found)
        error(api.get(f"{path}/tags/demo-tag", who), 404, kind.not_found)
    if kind.collection is None:  # a sub-resource: its parent is hidden, so is the collection
        parent = path.rsplit("/", 1)[0]
        for q in ("", "?fields=id", f"?id={ids[kind.name]}"):
            error(api.get(parent + q, who), 404, kind.not_found)
        return
    hidden = {ids[name] for name in HIDDEN}
    for q in _list_queries(world, kind):
        found = {x.get("id") for x in api.list(kind.collection, who, q)}
        assert not found & hidden, q
    # A hidden object as a page marker is no different from an unknown one.
    assert api.ok(api.get(f"{kind.collection}?limit=1&marker={ids[kind.name]}", who)) == api.ok(
        api.get(f"{kind.collection}?limit=1&marker={nobody}", who)
    )


@pytest.mark.parametrize("who", STRANGERS)
@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k.update is not None], ids=[k.name for k in KINDS if k.update is not None]
)
def test_update_is_404(world: World, kind: Kind, who: str) -> None:
    api = world.api
    path = _fill(kind.path, world.ids)
    with Unchanged(api.db):
        error(api.put(path, kind.update, who), 404, kind.not_found)
        if kind.tags:
            error(api.put(f"{path}/tags/x", None, who), 404, kind.not_found)
            error(api.put(f"{path}/tags", {"tags": ["x"]}, who), 404, kind.not_found)
            error(api.post(f"{path}/tags", {"tags": ["x"]}, who), 404, kind.not_found)
            error(api.delete(f"{path}/tags/demo-tag", who), 404, kind.not_found)
            error(api.delete(f"{path}/tags", who), 404, kind.not_found)


@pytest.mark.parametrize("who", STRANGERS)
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_delete_is_404(world: World, kind: Kind, who: str) -> None:
    api = world.api
    with Unchanged(api.db):
        error(api.delete(_fill(kind.path, world.ids), who), 404, kind.not_found)


@pytest.mark.parametrize("kind", [k for k in KINDS if k.reader_sees], ids=[k.name for k in KINDS if k.reader_sees])
def test_own_reader_sees_but_cannot_change(world: World, kind: Kind) -> None:
    """demo's reader: GET works; PUT, DELETE and tag changes are 403 and change nothing."""
    api = world.api
    path = _fill(kind.path, world.ids)
    assert api.ok(api.get(path, "reader"))
    with Unchanged(api.db):
        if kind.update is not None:
            error(api.put(path, kind.update, "reader"), 403, "PolicyNotAuthorized")
        error(api.delete(path, "reader"), 403, "PolicyNotAuthorized")
        if kind.tags:
            error(api.put(f"{path}/tags/x", None, "reader"), 403, "PolicyNotAuthorized")
            error(api.delete(f"{path}/tags/demo-tag", "reader"), 403, "PolicyNotAuthorized")


# --------------------------------------------------------------------------------------------
# references: another project's requests that name demo's objects
# --------------------------------------------------------------------------------------------
def _ref(method: str, path: str, body: Any, status: int, type_: str, id: str, who: str = "other") -> Any:
    """One request of ``who`` naming demo's objects ({names} in path and body), and its refusal."""
    return pytest.param(method, path, body, status, type_, who, id=id)


IFACE = {"device_owner": "network:router_interface", "device_id": "{router}"}
GATEWAY = {"device_owner": "network:router_gateway", "device_id": "{router}"}
PF_BODY = {"internal_port": 80, "external_port": 8080, "protocol": "tcp"}

REFERENCES = [
    # networks and subnets
    _ref(
        "POST",
        "subnets",
        {"subnet": {"network_id": "{net}", "cidr": "10.99.0.0/24", "ip_version": 4}},
        404,
        "NetworkNotFound",
        "subnet-on-private-net",
    ),
    _ref(
        "POST",
        "subnets",
        {"subnet": {"network_id": "{shared_net}", "cidr": "10.98.0.0/24", "ip_version": 4}},
        403,
        "PolicyNotAuthorized",
        "subnet-on-shared-net",
    ),
    _ref(
        "POST",
        "subnets",
        {"subnet": {"network_id": "{ext_net}", "cidr": "10.97.0.0/24", "ip_version": 4}},
        403,
        "PolicyNotAuthorized",
        "subnet-on-external-net",
    ),
    # ports
    _ref("POST", "ports", {"port": {"network_id": "{net}"}}, 404, "NetworkNotFound", "port-on-private-net"),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{net}", "fixed_ips": [{"subnet_id": "{subnet}"}]}},
        404,
        "NetworkNotFound",
        "port-on-private-net-with-its-subnet",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{o_net}", "fixed_ips": [{"subnet_id": "{subnet}"}]}},
        400,
        "InvalidInput",
        "port-with-demo-subnet",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "fixed_ips": [{"subnet_id": "{subnet}"}]}},
        400,
        "InvalidInput",
        "port-on-shared-net-with-private-subnet",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "fixed_ips": [{"ip_address": "10.11.0.50"}]}},
        403,
        "PolicyNotAuthorized",
        "port-on-shared-net-with-fixed-ip",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "mac_address": "fa:16:3e:00:00:01"}},
        403,
        "PolicyNotAuthorized",
        "port-on-shared-net-with-mac",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "port_security_enabled": False}},
        403,
        "PolicyNotAuthorized",
        "port-on-shared-net-without-port-security",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "allowed_address_pairs": [{"ip_address": "10.11.0.0/24"}]}},
        403,
        "PolicyNotAuthorized",
        "port-on-shared-net-with-address-pairs",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "device_owner": "network:dhcp"}},
        403,
        "PolicyNotAuthorized",
        "port-on-shared-net-as-dhcp",
    ),
    _ref(
        "PUT",
        "ports/{o_shared_port}",
        {"port": {"port_security_enabled": False}},
        403,
        "PolicyNotAuthorized",
        "own-port-on-shared-net-drops-port-security",
    ),
    _ref(
        "PUT",
        "ports/{o_shared_port}",
        {"port": {"allowed_address_pairs": [{"ip_address": "10.11.0.0/24"}]}},
        403,
        "PolicyNotAuthorized",
        "own-port-on-shared-net-gets-address-pairs",
    ),
    _ref(
        "PUT",
        "ports/{o_shared_port}",
        {"port": {"fixed_ips": [{"ip_address": "10.11.0.51"}]}},
        403,
        "PolicyNotAuthorized",
        "own-port-on-shared-net-picks-address",
    ),
    _ref(
        "PUT",
        "ports/{o_shared_port}",
        {"port": {"mac_address": "fa:16:3e:00:00:02"}},
        403,
        "PolicyNotAuthorized",
        "own-port-on-shared-net-picks-mac",
    ),
    _ref(
        "PUT",
        "ports/{o_shared_port}",
        {"port": {"device_owner": "network:router_interface"}},
        403,
        "PolicyNotAuthorized",
        "own-port-on-shared-net-as-router-interface",
    ),
    _ref("POST", "ports", {"port": {"network_id": "{ext_net}"}}, 403, "PolicyNotAuthorized", "port-on-external-net"),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{o_net}", "security_groups": ["{sg}"]}},
        404,
        "SecurityGroupNotFound",
        "port-with-demo-sg",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{o_net}", "security_groups": ["{default_sg}"]}},
        404,
        "SecurityGroupNotFound",
        "port-with-demo-default-sg",
    ),
    _ref(
        "PUT",
        "ports/{o_port}",
        {"port": {"security_groups": ["{sg}"]}},
        404,
        "SecurityGroupNotFound",
        "update-port-with-demo-sg",
    ),
    _ref(
        "PUT",
        "ports/{o_port}",
        {"port": {"fixed_ips": [{"subnet_id": "{subnet}"}]}},
        400,
        "InvalidInput",
        "update-port-with-demo-subnet",
    ),
    # finding 1: a port may name only a router of its own project as device_id
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{o_net}", **IFACE}},
        409,
        "DeviceIDNotOwnedByTenant",
        "port-as-interface-of-demo-router",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{o_net}", **GATEWAY}},
        409,
        "DeviceIDNotOwnedByTenant",
        "port-as-gateway-of-demo-router",
    ),
    _ref(
        "POST",
        "ports",
        {"port": {"network_id": "{shared_net}", "device_owner": "compute:nova", "device_id": "{router}"}},
        409,
        "DeviceIDNotOwnedByTenant",
        "port-on-shared-net-naming-demo-router",
    ),
    _ref(
        "PUT",
        "ports/{o_port}",
        {"port": IFACE},
        409,
        "DeviceIDNotOwnedByTenant",
        "update-port-to-interface-of-demo-router",
    ),
    # security groups
    _ref(
        "POST",
        "security-group-rules",
        {"security_group_rule": {"security_group_id": "{sg}", "direction": "ingress"}},
        404,
        "SecurityGroupNotFound",
        "rule-in-demo-sg",
    ),
    _ref(
        "POST",
        "security-group-rules",
        {"security_group_rule": {"security_group_id": "{default_sg}", "direction": "ingress", "protocol": "udp"}},
        404,
        "SecurityGroupNotFound",
        "rule-in-demo-default-sg",
    ),
    _ref(
        "POST",
        "security-group-rules",
        {"security_group_rule": {"security_group_id": "{o_sg}", "direction": "ingress", "remote_group_id": "{sg}"}},
        404,
        "SecurityGroupNotFound",
        "rule-with-demo-sg-as-remote",
    ),
    # routers
    _ref(
        "PUT",
        "routers/{o_router}/add_router_interface",
        {"subnet_id": "{subnet}"},
        404,
        "SubnetNotFound",
        "own-router-add-demo-subnet",
    ),
    _ref(
        "PUT",
        "routers/{o_router}/add_router_interface",
        {"subnet_id": "{shared_subnet}"},
        400,
        "BadRequest",
        "own-router-add-demo-shared-subnet",
    ),
    _ref(
        "PUT",
        "routers/{o_router}/add_router_interface",
        {"port_id": "{port_c}"},
        404,
        "PortNotFound",
        "own-router-add-demo-port",
    ),
    _ref(
        "PUT",
        "routers/{o_router}/add_router_interface",
        {"port_id": "{shared_port}"},
        404,
        "PortNotFound",
        "own-router-add-demo-port-on-shared-net",
    ),
    _ref(
        "PUT",
        "routers/{o_router}/remove_router_interface",
        {"subnet_id": "{subnet}"},
        404,
        "SubnetNotFound",
        "own-router-remove-demo-subnet",
    ),
    _ref(
        "PUT",
        "routers/{o_router}/remove_router_interface",
        {"port_id": "{router_iface}"},
        404,
        "RouterInterfaceNotFound",
        "own-router-remove-demo-interface",
    ),
    _ref(
        "PUT",
        "routers/{router}/add_router_interface",
        {"subnet_id": "{o_subnet}"},
        404,
        "RouterNotFound",
        "demo-router-add-own-subnet",
    ),
    _ref(
        "PUT",
        "routers/{router}/add_router_interface",
        {"port_id": "{o_port}"},
        404,
        "RouterNotFound",
        "demo-router-add-own-port",
    ),
    _ref(
        "PUT",
        "routers/{router}/remove_router_interface",
        {"subnet_id": "{subnet}"},
        404,
        "RouterNotFound",
        "demo-router-remove-interface",
    ),
    _ref(
        "PUT",
        "routers/{router}/add_extraroutes",
        {"router": {"routes": [{"destination": "10.50.0.0/24", "nexthop": "10.10.0.9"}]}},
        404,
        "RouterNotFound",
        "demo-router-add-routes",
    ),
    _ref(
        "PUT",
        "routers/{router}/remove_extraroutes",
        {"router": {"routes": []}},
        404,
        "RouterNotFound",
        "demo-router-remove-routes",
    ),
    _ref(
        "PUT",
        "routers/{o_router}",
        {"router": {"external_gateway_info": {"network_id": "{net}"}}},
        404,
        "NetworkNotFound",
        "own-router-gateway-on-demo-net",
    ),
    _ref(
        "PUT",
        "routers/{o_router}",
        {"router": {"external_gateway_info": {"network_id": "{shared_net}"}}},
        400,
        "BadRequest",
        "own-router-gateway-on-demo-shared-net",
    ),
    _ref(
        "POST",
        "routers",
        {"router": {"name": "r", "external_gateway_info": {"network_id": "{net}"}}},
        404,
        "NetworkNotFound",
        "new-router-gateway-on-demo-net",
    ),
    # floating IPs and port forwardings
    _ref(
        "POST",
        "floatingips",
        {"floatingip": {"floating_network_id": "{ext_net}", "port_id": "{port_c}"}},
        404,
        "PortNotFound",
        "fip-for-demo-port",
    ),
    _ref(
        "POST",
        "floatingips",
        {"floatingip": {"floating_network_id": "{ext_net}", "port_id": "{shared_port}"}},
        404,
        "PortNotFound",
        "fip-for-demo-port-on-shared-net",
    ),
    _ref(
        "POST",
        "floatingips",
        {"floatingip": {"floating_network_id": "{net}"}},
        404,
        "NetworkNotFound",
        "fip-on-demo-net",
    ),
    _ref(
        "PUT",
        "floatingips/{o_fip}",
        {"floatingip": {"port_id": "{port_c}"}},
        404,
        "PortNotFound",
        "own-fip-to-demo-port",
    ),
    _ref(
        "PUT",
        "floatingips/{o_fip}",
        {"floatingip": {"port_id": "{port_a}"}},
        404,
        "PortNotFound",
        "own-fip-to-demo-port-with-fip",
    ),
    _ref(
        "POST",
        "floatingips/{o_fip}/port_forwardings",
        {"port_forwarding": {"internal_port_id": "{port_c}", "internal_ip_address": "{port_c_ip}", **PF_BODY}},
        404,
        "PortNotFound",
        "own-pf-to-demo-port",
    ),
    _ref(
        "POST",
        "floatingips/{o_fip}/port_forwardings",
        {"port_forwarding": {"internal_port_id": "{port_a}", "internal_ip_address": "{port_a_ip}", **PF_BODY}},
        404,
        "PortNotFound",
        "own-pf-to-demo-port-with-fip",
    ),
    _ref(
        "POST",
        "floatingips/{o_fip}/port_forwardings",
        {
            "port_forwarding": {
                **PF_BODY,
                "internal_port_id": "{port_b}",
                "internal_ip_address": "{port_b_ip}",
                "internal_port": 22,
            }
        },
        404,
        "PortNotFound",
        "own-pf-to-demo-port-with-forwarding",
    ),
    _ref(
        "PUT",
        "floatingips/{o_fip2}/port_forwardings/{o_pf}",
        {"port_forwarding": {"internal_port_id": "{port_a}", "internal_ip_address": "{port_a_ip}"}},
        404,
        "PortNotFound",
        "own-pf-moved-to-demo-port-with-fip",
    ),
    _ref(
        "PUT",
        "floatingips/{o_fip2}/port_forwardings/{o_pf}",
        {"port_forwarding": {"internal_port_id": "{port_c}", "internal_ip_address": "{port_c_ip}"}},
        404,
        "PortNotFound",
        "own-pf-moved-to-demo-port",
    ),
    _ref(
        "POST",
        "floatingips/{fip_b}/port_forwardings",
        {"port_forwarding": {"internal_port_id": "{o_port}", "internal_ip_address": "{o_port_ip}", **PF_BODY}},
        404,
        "FloatingIPNotFound",
        "pf-on-demo-fip",
    ),
    # the scheduling APIs and the change feed (which carries every project's objects): admin/service only
    _ref("GET", "routers/{router}/l3-agents", None, 403, "PolicyNotAuthorized", "router-l3-agents"),
    _ref("GET", "networks/{net}/dhcp-agents", None, 403, "PolicyNotAuthorized", "network-dhcp-agents"),
    _ref("GET", "/neutrino/v1/changes?since=0", None, 403, "PolicyNotAuthorized", "change-feed"),
    _ref(
        "GET",
        "/neutrino/v1/changes?since=0",
        None,
        403,
        "PolicyNotAuthorized",
        "change-feed-as-reader",
        who="other-reader",
    ),
    _ref("GET", "/neutrino/v1/snapshot", None, 403, "PolicyNotAuthorized", "feed-snapshot"),
    _ref(
        "POST",
        "floatingips",
        {"floatingip": {"floating_network_id": "{ext_net}", "subnet_id": "{subnet}"}},
        400,
        "InvalidInput",
        "fip-from-demo-subnet",
    ),
    # quotas of another project
    _ref("GET", "quotas/p-demo", None, 403, "PolicyNotAuthorized", "quota-show"),
    _ref("GET", "quotas/p-demo/details", None, 403, "PolicyNotAuthorized", "quota-details"),
    _ref("GET", "quotas/p-demo/default", None, 403, "PolicyNotAuthorized", "quota-default"),
    _ref("PUT", "quotas/p-demo", {"quota": {"network": 0}}, 403, "PolicyNotAuthorized", "quota-update"),
    _ref("DELETE", "quotas/p-demo", None, 403, "PolicyNotAuthorized", "quota-delete"),
    _ref("GET", "quotas/p-demo", None, 403, "PolicyNotAuthorized", "quota-show-as-reader", who="other-reader"),
    # shared and external networks: visible, not changeable
    _ref("PUT", "networks/{shared_net}", {"network": {"name": "x"}}, 403, "PolicyNotAuthorized", "update-shared-net"),
    _ref("DELETE", "networks/{shared_net}", None, 403, "PolicyNotAuthorized", "delete-shared-net"),
    _ref("PUT", "networks/{shared_net}/tags/x", None, 403, "PolicyNotAuthorized", "tag-shared-net"),
    _ref("DELETE", "networks/{shared_net}/tags", None, 403, "PolicyNotAuthorized", "untag-shared-net"),
    _ref(
        "PUT", "subnets/{shared_subnet}", {"subnet": {"name": "x"}}, 403, "PolicyNotAuthorized", "update-shared-subnet"
    ),
    _ref(
        "PUT",
        "subnets/{shared_subnet}",
        {"subnet": {"allocation_pools": [{"start": "10.11.0.100", "end": "10.11.0.110"}]}},
        403,
        "PolicyNotAuthorized",
        "update-shared-subnet-pools",
    ),
    _ref("DELETE", "subnets/{shared_subnet}", None, 403, "PolicyNotAuthorized", "delete-shared-subnet"),
    _ref("PUT", "networks/{ext_net}", {"network": {"name": "x"}}, 403, "PolicyNotAuthorized", "update-ext-net"),
    _ref("DELETE", "networks/{ext_net}", None, 403, "PolicyNotAuthorized", "delete-ext-net"),
    _ref("DELETE", "subnets/{ext_subnet}", None, 403, "PolicyNotAuthorized", "delete-ext-subnet"),
    _ref(
        "PUT",
        "networks/{shared_net}",
        {"network": {"name": "x"}},
        403,
        "PolicyNotAuthorized",
        "update-shared-net-as-reader",
        who="other-reader",
    ),
    _ref(
        "POST",
        "floatingips",
        {"floatingip": {"floating_network_id": "{ext_net}"}},
        403,
        "PolicyNotAuthorized",
        "fip-as-reader",
        who="other-reader",
    ),
]


def _mentions(text: str, token: str) -> bool:
    """``token`` appears in ``text`` as a whole (an address, not the start of a longer one)."""
    return re.search(rf"(?<![\w.:]){re.escape(token)}(?![\w:]|\.\d)", text) is not None


@pytest.mark.parametrize(("method", "path", "body", "status", "type_", "who"), REFERENCES)
def test_reference_to_demo_object_fails(
    world: World, method: str, path: str, body: Any, status: int, type_: str, who: str
) -> None:
    api = world.api
    with Unchanged(api.db):
        resp = api.req(method, _fill(path, world.ids), who, json=_fill(body, world.ids))
        assert resp.status_code == status, (resp.status_code, resp.text)
        err = resp.json()["NeutronError"]
        assert err["type"] == type_, err
        # A refusal names only what the caller sent: never an address, id or range it could not see.
        sent = resp.request.url.path + (resp.request.content or b"").decode()
        for secret in (
            world.ids["fip_a"],
            world.ids["fip_b"],
            world.ids["pf"],
            world.objs["fip_a"]["floating_ip_address"],
            world.objs["fip_b"]["floating_ip_address"],
            "22:22",
            "2222:2222",
        ):
            assert _mentions(sent, secret) or not _mentions(err["message"], secret), err


def test_own_reader_cannot_use_own_objects(world: World) -> None:
    """demo's reader may not create on or attach demo's objects (403, not 404: they are visible)."""
    api = world.api
    with Unchanged(api.db):
        error(api.post("ports", {"port": {"network_id": world.ids["net"]}}, "reader"), 403, "PolicyNotAuthorized")
        error(
            api.post(
                "subnets",
                {"subnet": {"network_id": world.ids["net"], "cidr": "10.96.0.0/24", "ip_version": 4}},
                "reader",
            ),
            403,
            "PolicyNotAuthorized",
        )
        error(
            api.put(f"routers/{world.ids['router']}/add_router_interface", {"port_id": world.ids["port_c"]}, "reader"),
            403,
            "PolicyNotAuthorized",
        )
        error(
            api.put(f"floatingips/{world.ids['fip_b']}", {"floatingip": {"port_id": world.ids["port_c"]}}, "reader"),
            403,
            "PolicyNotAuthorized",
        )
        error(
            api.post(
                "security-group-rules",
                {
                    "security_group_rule": {
                        "security_group_id": world.ids["sg"],
                        "direction": "egress",
                        "protocol": "udp",
                    }
                },
                "reader",
            ),
            403,
            "PolicyNotAuthorized",
        )
        error(
            api.post(
                f"floatingips/{world.ids['fip_b']}/port_forwardings",
                {
                    "port_forwarding": {
                        "internal_port_id": world.ids["port_c"],
                        "internal_ip_address": world.ids["port_c_ip"],
                        **PF_BODY,
                    }
                },
                "reader",
            ),
            403,
            "PolicyNotAuthorized",
        )
        error(api.put("quotas/p-demo", {"quota": {"network": 0}}, "reader"), 403, "PolicyNotAuthorized")


# --------------------------------------------------------------------------------------------
# what sharing does allow (positive controls: the checks above are not vacuous)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", STRANGERS)
def test_shared_and_external_networks_are_visible(world: World, who: str) -> None:
    api, ids = world.api, world.ids
    for coll, key, name in (
        ("networks", "network", "shared_net"),
        ("subnets", "subnet", "shared_subnet"),
        ("networks", "network", "ext_net"),
        ("subnets", "subnet", "ext_subnet"),
    ):
        assert api.show(coll, key, ids[name], who)["id"] == ids[name]
        assert ids[name] in {x["id"] for x in api.list(coll, who)}
    # Sharing a network does not share the ports demo has on it.
    error(api.get(f"ports/{ids['shared_port']}", who), 404, "PortNotFound")
    assert ids["shared_port"] not in {p["id"] for p in api.list("ports", who, f"network_id={ids['shared_net']}")}
    # demo's quota is not listed.
    assert all(q["project_id"] != "p-demo" for q in api.ok(api.get("quotas", who))["quotas"])


def test_other_may_use_shared_and_external_networks(world: World) -> None:
    """``other`` may plug a port into demo's shared network and take a floating IP from the
    external one (and remove both again); the objects are theirs, demo's are untouched."""
    api, ids = world.api, world.ids
    before = {
        name: api.show(coll, key, ids[name])
        for coll, key, name in (
            ("networks", "network", "shared_net"),
            ("subnets", "subnet", "shared_subnet"),
            ("networks", "network", "ext_net"),
        )
    }
    port = api.port(ids["shared_net"], "other")
    assert port["project_id"] == "p-other"
    fip = floating_ip(api, ids["ext_net"], "other")
    assert fip["project_id"] == "p-other"
    # The network's owner sees every port on it (Neutron's network-owner reader rule), not the FIP.
    assert api.show("ports", "port", port["id"], "demo")["id"] == port["id"]
    error(api.get(f"floatingips/{fip['id']}", "demo"), 404, "FloatingIPNotFound")
    api.ok(api.delete(f"ports/{port['id']}", "other"), 204)
    api.ok(api.delete(f"floatingips/{fip['id']}", "other"), 204)
    after = {
        name: api.show(coll, key, ids[name])
        for coll, key, name in (
            ("networks", "network", "shared_net"),
            ("subnets", "subnet", "shared_subnet"),
            ("networks", "network", "ext_net"),
        )
    }
    assert after == before

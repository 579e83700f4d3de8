"""Issue 13, finding 9: errors must not describe what the caller may not see.

A port forwarding on demo's own floating IP naming another project's port
(``internal_port_id``) answered 409 ``PortHasBindingFloatingIP`` with that
port's floating IP address and id, or 400 with that port's other forwardings.
The port's visibility is checked first: 404 ``PortNotFound``, on create and
on update.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import error
from tests.api.l3_helpers import add_subnet, floating_ip, router, set_gateway, topology


@pytest.fixture
def world(api: Any) -> dict[str, Any]:
    """demo's router, network, port and floating IP; the same for ``other``, whose port has a
    floating IP of its own and a forwarding (tcp 22) from another of its floating IPs."""
    topo = topology(api)  # demo's
    o_router = router(api, "other")
    set_gateway(api, o_router["id"], topo.ext_net["id"], "other")
    o_net, o_sub = api.net_with_subnet("10.9.0.0/24", "other")
    add_subnet(api, o_router["id"], o_sub["id"], "other")
    o_port = api.port(o_net["id"], "other")
    o_spare = api.port(o_net["id"], "other")
    o_fip = floating_ip(api, topo.ext_net["id"], "other", port_id=o_port["id"])
    o_fip2 = floating_ip(api, topo.ext_net["id"], "other")
    api.ok(
        api.post(
            f"floatingips/{o_fip2['id']}/port_forwardings",
            {
                "port_forwarding": {
                    "protocol": "tcp",
                    "internal_port_id": o_spare["id"],
                    "internal_ip_address": o_spare["fixed_ips"][0]["ip_address"],
                    "internal_port": 22,
                    "external_port": 2222,
                }
            },
            "other",
        ),
        201,
    )
    return {
        "topo": topo,
        "fip": floating_ip(api, topo.ext_net["id"]),
        "o_port": o_port,
        "o_fip": o_fip,
        "o_spare": o_spare,
        "o_fip2": o_fip2,
    }


def _pf(port: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "port_forwarding": {
            "protocol": "tcp",
            "internal_port_id": port["id"],
            "internal_ip_address": port["fixed_ips"][0]["ip_address"],
            "internal_port": 22,
            "external_port": 2022,
            **extra,
        }
    }


def _no_trace(err: dict[str, Any], *secrets: str) -> None:
    for s in secrets:
        assert s not in err["message"], err


def test_create_naming_a_port_with_a_floating_ip_of_another_project_is_404(api, world):
    before = api.snapshot()
    err = error(
        api.post(f"floatingips/{world['fip']['id']}/port_forwardings", _pf(world["o_port"]), "demo"),
        404,
        "PortNotFound",
        f"Port {world['o_port']['id']} could not be found.",
    )
    _no_trace(err, world["o_fip"]["floating_ip_address"], world["o_fip"]["id"])
    assert api.snapshot() == before


def test_create_naming_a_forwarded_port_of_another_project_is_404(api, world):
    """The internal-side collision check would list the other project's forwarding."""
    err = error(
        api.post(f"floatingips/{world['fip']['id']}/port_forwardings", _pf(world["o_spare"]), "demo"),
        404,
        "PortNotFound",
    )
    _no_trace(err, "22:22", world["o_fip2"]["id"])


def test_update_to_a_port_of_another_project_is_404(api, world):
    topo = world["topo"]
    pf = api.ok(api.post(f"floatingips/{world['fip']['id']}/port_forwardings", _pf(topo.port), "demo"), 201)[
        "port_forwarding"
    ]
    before = api.snapshot()
    err = error(
        api.put(
            f"floatingips/{world['fip']['id']}/port_forwardings/{pf['id']}",
            {"port_forwarding": {"internal_port_id": world["o_port"]["id"]}},
            "demo",
        ),
        404,
        "PortNotFound",
    )
    _no_trace(err, world["o_fip"]["floating_ip_address"], world["o_fip"]["id"])
    assert api.snapshot() == before


def test_own_port_with_a_floating_ip_still_gets_the_conflict(api, world):
    """The check hides other projects' ports only: demo's own port keeps Neutron's 409."""
    topo = world["topo"]
    own_fip = floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    err = error(
        api.post(f"floatingips/{world['fip']['id']}/port_forwardings", _pf(topo.port), "demo"),
        409,
        "PortHasBindingFloatingIP",
    )
    assert own_fip["floating_ip_address"] in err["message"]


def test_admin_still_sees_every_port(api, world):
    err = error(
        api.post(f"floatingips/{world['fip']['id']}/port_forwardings", _pf(world["o_port"]), "admin"),
        409,
        "PortHasBindingFloatingIP",
    )
    assert world["o_fip"]["id"] in err["message"]


def test_unknown_attribute_names_are_echoed_bounded(api) -> None:
    """A body with a huge unknown key: the 400 repeats at most a bounded part of it."""
    key = "k" * 50_000
    r = api.post("networks", {"network": {key: 1}}, as_="demo")
    assert r.status_code == 400, r.text
    assert len(r.json()["NeutronError"]["message"]) < 300

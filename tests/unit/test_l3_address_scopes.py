"""Address scopes in the L3 agent's plan: the model reads each port's scope from its network,
and the ruleset routes same-scope traffic without SNAT while other subnets still SNAT."""

from __future__ import annotations

from neutrino.agents.l3 import render
from neutrino.agents.l3.model import FloatingIp, L3Config, RouterIp, RouterPort, RouterSubnet, RouterView, router_view

CFG = L3Config(host="net1")
SCOPE = "5c0be000-0000-4000-8000-00000000000a"
OTHER = "5c0be000-0000-4000-8000-00000000000b"
GW, QR_IN, QR_OUT = (
    "7e1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
)


def _port(pid: str, kind: str, ip: str, cidr: str, scope: str | None) -> RouterPort:
    plen = int(cidr.split("/")[1])
    return RouterPort(
        pid,
        kind,
        "fa:16:3e:00:00:01",
        "net-" + pid[:4],
        1500,
        (RouterIp(ip, plen, "s-" + pid),),
        (RouterSubnet("s-" + pid, cidr, 4, None),),
        scope,
    )


def _router(
    gw_scope: str | None, in_scope: str | None, fips: tuple[FloatingIp, ...] = (), enable_snat: bool = True
) -> RouterView:
    return RouterView(
        "r1",
        True,
        enable_snat,
        (
            _port(QR_IN, "qr", "10.10.0.1", "10.10.0.0/24", in_scope),
            _port(QR_OUT, "qr", "192.168.5.1", "192.168.5.0/24", None),
        ),
        _port(GW, "qg", "172.24.4.10", "172.24.4.0/24", gw_scope),
        fips,
    )


def _rules(text: str, table: str, chain: str) -> list[str]:
    return list(render.parse_iptables_save(text)[table].chain_rules(render.wrapped(chain)))


def test_model_takes_scope_from_network():
    router = {
        "id": "r1",
        "admin_state_up": True,
        "external_gateway_info": {"network_id": "ext"},
        "gw_port_id": GW,
        "interface_port_ids": [QR_IN],
    }
    ports = [
        {
            "id": GW,
            "device_id": "r1",
            "device_owner": "network:router_gateway",
            "network_id": "ext",
            "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": "es", "ip_address": "172.24.4.10"}],
        },
        {
            "id": QR_IN,
            "device_id": "r1",
            "device_owner": "network:router_interface",
            "network_id": "in",
            "mac_address": "fa:16:3e:00:00:02",
            "fixed_ips": [{"subnet_id": "is", "ip_address": "10.10.0.1"}],
        },
    ]
    subnets = [
        {"id": "es", "cidr": "172.24.4.0/24", "ip_version": 4, "gateway_ip": "172.24.4.1"},
        {"id": "is", "cidr": "10.10.0.0/24", "ip_version": 4, "gateway_ip": "10.10.0.1"},
    ]
    networks = [
        {"id": "ext", "mtu": 1500, "ipv4_address_scope": SCOPE},
        {"id": "in", "mtu": 1450, "ipv4_address_scope": None},
    ]
    view = router_view(router, ports, subnets, networks, [])
    assert view.gateway is not None and view.gateway.address_scope == SCOPE
    assert view.interfaces[0].address_scope is None


def test_without_scopes_nothing_changes():
    """No scope anywhere: every port carries the no-scope mark, the snat chain has no exemption."""
    text = render.iptables_ruleset(CFG, _router(None, None))
    assert not any("connmark --mark" in r and "ACCEPT" in r for r in _rules(text, "nat", "snat"))
    assert set(render.scope_marks(_router(None, None)).values()) == {"0x4000000/0xffff0000"}
    assert _rules(text, "mangle", "floatingip") == []


def test_same_scope_subnet_is_not_snated():
    router = _router(SCOPE, SCOPE)
    marks = render.scope_marks(router)
    assert marks[None] == "0x4000000/0xffff0000" and marks[SCOPE] == "0x4010000/0xffff0000"
    text = render.iptables_ruleset(CFG, router)
    qg, qr_in, qr_out = router.gateway.device, router.interfaces[0].device, router.interfaces[1].device
    snat = _rules(text, "nat", "snat")
    accept = f"-o {qg} -m connmark --mark 0x4010000/0xffff0000 -j ACCEPT"
    assert accept in snat
    # The exemption comes before the gateway SNAT (which still applies to the other subnet).
    sn = f"-o {qg} -j SNAT --to-source 172.24.4.10 --random-fully"
    assert snat.index(accept) < snat.index(sn)
    scope = _rules(text, "mangle", "scope")
    assert f"-i {qr_in} -j MARK --set-xmark 0x4010000/0xffff0000" in scope
    assert f"-i {qg} -j MARK --set-xmark 0x4010000/0xffff0000" in scope
    assert f"-i {qr_out} -j MARK --set-xmark 0x4000000/0xffff0000" in scope
    filt = _rules(text, "filter", "scope")
    # The in-scope interface accepts what entered from the external network (same scope)...
    assert f"-o {qr_in} -m mark ! --mark 0x4010000/0xffff0000 -j DROP" in filt
    # ...the unscoped one only what is unscoped (SNATed replies carry their connmark).
    assert f"-o {qr_out} -m mark ! --mark 0x4000000/0xffff0000 -j DROP" in filt
    # The connection's scope is saved leaving through qg, restored on replies.
    assert any("CONNMARK --save-mark" in r and qg in r for r in _rules(text, "mangle", "POSTROUTING"))
    assert any("CONNMARK --restore-mark" in r for r in _rules(text, "mangle", "PREROUTING"))


def test_other_scope_subnet_still_snated_and_marks_are_stable():
    router = _router(SCOPE, OTHER)
    text = render.iptables_ruleset(CFG, router)
    marks = render.scope_marks(router)
    assert len(set(marks.values())) == 3
    snat = _rules(text, "nat", "snat")
    assert f"-o {router.gateway.device} -m connmark --mark {marks[SCOPE]} -j ACCEPT" in snat
    assert not any(marks[OTHER] in r for r in snat)
    # The marks depend on the set of scopes, not on the order of the ports.
    swapped = RouterView("r1", True, True, tuple(reversed(router.interfaces)), router.gateway)
    assert render.scope_marks(swapped) == marks


def test_floating_ip_across_scopes_gets_marks():
    fip = FloatingIp("f1", "172.24.4.50", "192.168.5.7", "p1")
    router = _router(SCOPE, SCOPE, (fip,))
    text = render.iptables_ruleset(CFG, router)
    marks = render.scope_marks(router)
    assert _rules(text, "mangle", "floatingip") == [f"-d 172.24.4.50/32 -j MARK --set-xmark {marks[None]}"]
    assert f"-s 192.168.5.7/32 -j {render.wrapped('float-snat')}" in _rules(text, "mangle", "FORWARD")
    assert f"-o {router.gateway.device} -j MARK --set-xmark {marks[SCOPE]}" in _rules(text, "mangle", "float-snat")
    # A floating IP of a fixed address in the external scope needs none of that.
    same = _router(SCOPE, SCOPE, (FloatingIp("f2", "172.24.4.51", "10.10.0.7", "p2"),))
    assert _rules(render.iptables_ruleset(CFG, same), "mangle", "floatingip") == []

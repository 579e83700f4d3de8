"""L3 agent model and iptables renderer: golden files per router state, parser, round trip.

Each golden case builds a router from API-shaped dicts (as the feed delivers
them) and compares the rendered ruleset plus the device addresses/routes
with ``tests/golden/l3/<case>/``.  Regenerate with
``NEUTRINO_UPDATE_GOLDEN=1 pytest tests/unit/test_l3_render.py`` and review
the diff by eye.  When run as root with ``unshare`` and ``iptables-restore``
available, the rendered rulesets are loaded into a throw-away network
namespace and the ``iptables-save`` output must parse back to the same
normal form (the canonical-form claim of ``render``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neutrino.agents.l3 import render
from neutrino.agents.l3.model import (
    FloatingIp,
    L3Config,
    PortForwarding,
    RouterView,
    gateway_name,
    internal_name,
    namespace_name,
    router_view,
    router_views,
)
from neutrino.agents.l3.planner import desired_addresses, desired_routes

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "l3"
HOST = "net1"
ROUTER = "4e8b2f1a-6c3d-4b5e-9f70-8a1b2c3d4e5f"
EXT_NET = "e0e0e0e0-1111-4222-8333-444455556666"
EXT_SUB = "e1e1e1e1-1111-4222-8333-444455556666"
NET = "5b0c7c1e-8d3a-4e0f-9c1b-2a3d4e5f6a7b"
SUB = "6a1f2e3d-4c5b-4a69-8877-665544332211"
NET2 = "6c1d8d2f-9e4b-4f1a-8d2c-3b4e5f6a7b8c"
SUB2 = "7b2e3f4a-5d6c-4b7a-9988-776655443322"
GW_PORT = "7e1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
QR_PORT = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
QR_PORT2 = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
VM_PORT = "4f2a1b3c-9d8e-4a5b-8c7d-0123456789ab"
VM2_PORT = "5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f5a6b"
FIP1 = "f1f1f1f1-0000-4000-8000-000000000001"
FIP2 = "f2f2f2f2-0000-4000-8000-000000000002"
FIP_PF = "f3f3f3f3-0000-4000-8000-000000000003"
PF_TCP = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
PF_UDP = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
PF_SAME = "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f"


# --- API-shaped builders ------------------------------------------------------------------
def api_router(
    gateway: bool = True, enable_snat: bool | None = True, routes: list[dict[str, str]] | None = None, **kw: Any
) -> dict[str, Any]:
    gw = None
    if gateway:
        gw = {"network_id": EXT_NET, "external_fixed_ips": [{"subnet_id": EXT_SUB, "ip_address": "172.24.4.10"}]}
        if enable_snat is not None:
            gw["enable_snat"] = enable_snat
    d = {
        "id": ROUTER,
        "name": "r",
        "admin_state_up": True,
        "status": "ACTIVE",
        "external_gateway_info": gw,
        "routes": routes or [],
        "distributed": False,
        "ha": False,
        # the router's own records (the server's router_ports), as the feed's admin view has them
        "gw_port_id": GW_PORT,
        "interface_port_ids": [QR_PORT, QR_PORT2],
    }
    d.update(kw)
    return d


def api_networks() -> list[dict[str, Any]]:
    return [{"id": EXT_NET, "mtu": 1500, "router:external": True}, {"id": NET, "mtu": 1450}, {"id": NET2, "mtu": 1400}]


def api_subnets() -> list[dict[str, Any]]:
    return [
        {"id": EXT_SUB, "network_id": EXT_NET, "cidr": "172.24.4.0/24", "ip_version": 4, "gateway_ip": "172.24.4.1"},
        {"id": SUB, "network_id": NET, "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1"},
        {"id": SUB2, "network_id": NET2, "cidr": "10.1.0.0/24", "ip_version": 4, "gateway_ip": "10.1.0.1"},
    ]


def api_port(
    pid: str, net: str, mac: str, ips: list[tuple[str, str]], owner: str, device_id: str = ROUTER, **kw: Any
) -> dict[str, Any]:
    d = {
        "id": pid,
        "network_id": net,
        "mac_address": mac,
        "device_owner": owner,
        "device_id": device_id,
        "admin_state_up": True,
        "status": "ACTIVE",
        "fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in ips],
    }
    d.update(kw)
    return d


def router_ports(second_interface: bool = False) -> list[dict[str, Any]]:
    ports = [
        api_port(GW_PORT, EXT_NET, "fa:16:3e:7e:1c:2d", [(EXT_SUB, "172.24.4.10")], "network:router_gateway"),
        api_port(QR_PORT, NET, "fa:16:3e:bb:bb:bb", [(SUB, "10.0.0.1")], "network:router_interface"),
        api_port(VM_PORT, NET, "fa:16:3e:11:22:33", [(SUB, "10.0.0.5")], "compute:nova", device_id="server-1"),
        api_port(VM2_PORT, NET, "fa:16:3e:44:55:66", [(SUB, "10.0.0.6")], "compute:nova", device_id="server-2"),
    ]
    if second_interface:
        ports.append(api_port(QR_PORT2, NET2, "FA:16:3E:CC:CC:CC", [(SUB2, "10.1.0.1")], "network:router_interface"))
    return ports


def api_fip(
    fid: str,
    address: str,
    fixed: str | None = None,
    port: str | None = None,
    pfs: list[dict[str, Any]] | None = None,
    router: str | None = ROUTER,
) -> dict[str, Any]:
    return {
        "id": fid,
        "floating_ip_address": address,
        "floating_network_id": EXT_NET,
        "router_id": router,
        "port_id": port,
        "fixed_ip_address": fixed,
        "status": "DOWN",
        "port_forwardings": pfs or [],
    }


# --- golden cases ------------------------------------------------------------------------
Case = tuple[L3Config, RouterView]


def _view(
    router: dict[str, Any],
    ports: list[dict[str, Any]],
    fips: list[dict[str, Any]],
    reverse: bool,
    cfg: L3Config | None = None,
) -> Case:
    cfg = cfg or L3Config(HOST)
    subs, nets = api_subnets(), api_networks()
    if reverse:
        ports, fips, subs, nets = ports[::-1], fips[::-1], subs[::-1], nets[::-1]
    return cfg, router_view(router, ports, subs, nets, fips, cfg)


def no_gateway(reverse: bool = False) -> Case:
    """Two interfaces, no gateway: metadata + address-scope rules only; FIP ignored."""
    ports = [p for p in router_ports(second_interface=True) if p["device_owner"] != "network:router_gateway"]
    fips = [api_fip(FIP1, "172.24.4.50", "10.0.0.5", VM_PORT)]
    return _view(api_router(gateway=False), ports, fips, reverse)


def gateway_snat(reverse: bool = False) -> Case:
    """Gateway with SNAT (default from config), an extra route pair (ECMP)."""
    routes = [
        {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"},
        {"destination": "192.168.0.0/16", "nexthop": "10.0.0.253"},
        {"destination": "10.9.0.0/16", "nexthop": "10.0.0.250"},
    ]
    return _view(api_router(enable_snat=None, routes=routes), router_ports(), [], reverse)


def snat_disabled(reverse: bool = False) -> Case:
    """Gateway with enable_snat False, no metadata proxy, no --random-fully."""
    cfg = L3Config(HOST, enable_metadata_proxy=False, use_random_fully=False)
    return _view(api_router(enable_snat=False), router_ports(), [], reverse, cfg)


def two_fips(reverse: bool = False) -> Case:
    """Two associated floating IPs (+ one of another router, + one unassociated)."""
    fips = [
        api_fip(FIP2, "172.24.4.51", "10.0.0.6", VM2_PORT),
        api_fip(FIP1, "172.24.4.50", "10.0.0.5", VM_PORT),
        api_fip("f9f9f9f9-0000-4000-8000-000000000009", "172.24.4.99", "10.5.0.5", "x", router="another-router"),
        api_fip("f8f8f8f8-0000-4000-8000-000000000008", "172.24.4.98", router=None),
    ]
    return _view(api_router(), router_ports(), fips, reverse)


def port_forwardings(reverse: bool = False) -> Case:
    """A floating IP used by TCP and UDP forwardings: single port, shifted range, same range."""
    pfs = [
        {
            "id": PF_TCP,
            "protocol": "tcp",
            "internal_ip_address": "10.0.0.5",
            "internal_port_id": VM_PORT,
            "internal_port": 22,
            "external_port": 2222,
        },
        {
            "id": PF_UDP,
            "protocol": "udp",
            "internal_ip_address": "10.0.0.6",
            "internal_port_id": VM2_PORT,
            "internal_port_range": "3000:3010",
            "external_port_range": "2000:2010",
        },
        {
            "id": PF_SAME,
            "protocol": "tcp",
            "internal_ip_address": "10.0.0.6",
            "internal_port_id": VM2_PORT,
            "internal_port_range": "8000:8010",
            "external_port_range": "8000:8010",
        },
    ]
    fips = [api_fip(FIP_PF, "172.24.4.60", pfs=pfs), api_fip(FIP1, "172.24.4.50", "10.0.0.5", VM_PORT)]
    return _view(api_router(), router_ports(), fips, reverse)


CASES: dict[str, Callable[..., Case]] = {
    "no_gateway": no_gateway,
    "gateway_snat": gateway_snat,
    "snat_disabled": snat_disabled,
    "two_fips": two_fips,
    "port_forwardings": port_forwardings,
}


def rendered(cfg: L3Config, router: RouterView) -> dict[str, str]:
    lines = []
    for port in router.ports:
        lines.append(f"{port.device} {port.mac} mtu {port.mtu}")
        lines += [f"  {c}" for c in desired_addresses(router, port)]
    for r in desired_routes(router).routes():
        via = " ".join(f"via {h}" for h in r.nexthops) or f"dev {r.device} scope link"
        lines.append(f"route {r.destination} {via}")
    return {"iptables": render.iptables_ruleset(cfg, router), "devices": "".join(line + "\n" for line in lines)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    got = rendered(*CASES[case]())
    folder = GOLDEN / case
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in got.items():
            (folder / name).write_text(text)
    for name, text in got.items():
        assert (folder / name).read_text() == text, f"{case}/{name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_does_not_depend_on_feed_order(case: str) -> None:
    assert rendered(*CASES[case]()) == rendered(*CASES[case](reverse=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_through_parser_is_stable(case: str) -> None:
    text = render.iptables_ruleset(*CASES[case]())
    parsed = render.parse_iptables_save(text)
    assert set(parsed) == set(render.TABLES)
    # Re-serialising the normal form gives the rendered text back: it is already canonical.
    out = []
    for t in render.TABLES:
        table = parsed[t]
        out.append(f"*{t}")
        out += [f":{c} {p} [0:0]" for c, p in table.chains]
        out += [f"-A {c} {r}" for c, r in table.rules]
        out.append("COMMIT")
    assert "\n".join(out) + "\n" == text


# --- targeted rules ----------------------------------------------------------------------
def _rules(text: str, table: str, chain: str) -> tuple[str, ...]:
    return render.parse_iptables_save(text)[table].chain_rules(chain)


def test_reference_example_rules() -> None:
    """The reference's worked example (one qr, gateway, FIP 172.24.4.50 -> 10.0.0.5)."""
    cfg, router = two_fips()
    text = render.iptables_ruleset(cfg, router)
    qg = gateway_name(GW_PORT)
    assert qg == "qg-7e1c2d3e-4f"
    assert _rules(text, "nat", "neutron-l3-agent-snat") == (
        "-j neutron-l3-agent-float-snat",
        f"-o {qg} -j SNAT --to-source 172.24.4.10 --random-fully",
        "-m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source 172.24.4.10 --random-fully",
    )
    assert _rules(text, "nat", "neutron-l3-agent-POSTROUTING") == (
        f"! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT",
    )
    assert _rules(text, "nat", "neutron-l3-agent-float-snat") == (
        "-s 10.0.0.5/32 -j SNAT --to-source 172.24.4.50 --random-fully",
        "-s 10.0.0.6/32 -j SNAT --to-source 172.24.4.51 --random-fully",
    )
    assert "-d 172.24.4.50/32 -j DNAT --to-destination 10.0.0.5" in _rules(text, "nat", "neutron-l3-agent-OUTPUT")
    assert _rules(text, "nat", "neutron-postrouting-bottom") == (
        '-m comment --comment "Perform source NAT on outgoing traffic." -j neutron-l3-agent-snat',
    )
    assert _rules(text, "mangle", "neutron-l3-agent-mark") == (f"-i {qg} -j MARK --set-xmark 0x2/0xffff",)
    assert _rules(text, "filter", "neutron-l3-agent-INPUT") == (
        "-m mark --mark 0x1/0xffff -j ACCEPT",
        "-p tcp -m tcp --dport 9697 -j DROP",
    )
    assert _rules(text, "filter", "neutron-l3-agent-scope") == (
        f"-o {internal_name(QR_PORT)} -m mark ! --mark 0x4000000/0xffff0000 -j DROP",
    )
    assert "172.24.4.99" not in text and "172.24.4.98" not in text


def test_snat_disabled_keeps_fip_rules_and_drops_default_snat() -> None:
    cfg, router = snat_disabled()
    router = RouterView(
        router.id,
        True,
        False,
        router.interfaces,
        router.gateway,
        (FloatingIp(FIP1, "172.24.4.50", "10.0.0.5", VM_PORT),),
        router.routes,
    )
    text = render.iptables_ruleset(cfg, router)
    assert _rules(text, "nat", "neutron-l3-agent-snat") == ("-j neutron-l3-agent-float-snat",)
    assert _rules(text, "nat", "neutron-l3-agent-float-snat") == ("-s 10.0.0.5/32 -j SNAT --to-source 172.24.4.50",)
    # qg is no longer exempt from the address-scope check
    assert f"-o {gateway_name(GW_PORT)} -m mark ! --mark 0x4000000/0xffff0000 -j DROP" in _rules(
        text, "filter", "neutron-l3-agent-scope"
    )
    assert "REDIRECT" not in text and "9697" not in text


def test_port_forwarding_rules() -> None:
    text = render.iptables_ruleset(*port_forwardings())
    assert _rules(text, "nat", "neutron-l3-agent-fip-pf") == (
        "-j neutron-l3-agent-pf-1a2b3c4d",
        "-j neutron-l3-agent-pf-3c4d5e6f",
        "-j neutron-l3-agent-pf-2b3c4d5e",
    )  # by protocol, then external port
    assert _rules(text, "nat", "neutron-l3-agent-pf-1a2b3c4d") == (
        "-d 172.24.4.60/32 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.0.0.5:22",
    )
    assert _rules(text, "nat", "neutron-l3-agent-pf-2b3c4d5e") == (
        "-d 172.24.4.60/32 -p udp -m udp --dport 2000:2010 -j DNAT --to-destination 10.0.0.6:3000-3010/2000",
    )
    assert _rules(text, "nat", "neutron-l3-agent-pf-3c4d5e6f") == (
        "-d 172.24.4.60/32 -p tcp -m tcp --dport 8000:8010 -j DNAT --to-destination 10.0.0.6:8000-8010",
    )
    assert "-j neutron-l3-agent-fip-pf" in _rules(text, "nat", "neutron-l3-agent-PREROUTING")
    # no float-snat for the forwarding-only FIP: outbound uses the router's SNAT
    assert not any("172.24.4.60" in r for r in _rules(text, "nat", "neutron-l3-agent-float-snat"))


def test_port_forwarding_extension_off() -> None:
    cfg, router = port_forwardings()
    text = render.iptables_ruleset(L3Config(HOST, port_forwarding=False), router)
    assert "fip-pf" not in text and "pf-1a2b3c4d" not in text


def test_wrapped_chain_names_are_truncated() -> None:
    assert render.wrapped("float-snat") == "neutron-l3-agent-float-snat"
    assert render.wrapped("pf-1a2b3c4d-5e6f") == "neutron-l3-agent-pf-1a2b3c4d"
    assert (
        render.pf_chain(PortForwarding(PF_TCP, "tcp", "10.0.0.5", (22, 22), (22, 22))) == "neutron-l3-agent-pf-1a2b3c4d"
    )


# --- parser ------------------------------------------------------------------------------
SAVED = """# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 17:27:44 2026
*filter
:INPUT ACCEPT [12:345]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:zed - [0:0]
[3:120] -A INPUT   -j zed
-A zed -m comment --comment 'two  words' -j ACCEPT
-A zed -m comment --comment single -j ACCEPT
COMMIT
# Completed on Fri Nov 27 17:27:44 2026
*security
:INPUT ACCEPT [0:0]
COMMIT
"""


def test_parser_ignores_counters_comments_and_quoting() -> None:
    parsed = render.parse_iptables_save(SAVED)
    f = parsed["filter"]
    assert f.chains == (("INPUT", "ACCEPT"), ("FORWARD", "DROP"), ("OUTPUT", "ACCEPT"), ("zed", "-"))
    assert f.rules == (
        ("INPUT", "-j zed"),
        ("zed", '-m comment --comment "two  words" -j ACCEPT'),
        ("zed", "-m comment --comment single -j ACCEPT"),
    )
    assert parsed["security"].rules == ()


def test_missing_tables_count_as_empty() -> None:
    assert render.same_ruleset("", "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    assert not render.same_ruleset("", render.iptables_ruleset(*no_gateway()))
    assert render.normalise("")[0] == render.empty_table("nat")


def test_same_ruleset_ignores_table_order_and_headers() -> None:
    text = render.iptables_ruleset(*two_fips())
    blocks = text.split("COMMIT\n")[:-1]
    shuffled = "".join(f"# Generated by x\n{b}COMMIT\n# Completed\n" for b in reversed(blocks))
    assert render.same_ruleset(text, shuffled)
    assert not render.same_ruleset(text, shuffled.replace("172.24.4.51", "172.24.4.52"))


# --- model -------------------------------------------------------------------------------
def test_router_view_from_feed() -> None:
    ports = router_ports(second_interface=True)
    ports.append(
        api_port(
            "dddddddd-dddd-4ddd-8ddd-dddddddddddd",
            NET,
            "fa:16:3e:dd:dd:dd",
            [(SUB, "10.0.0.9")],
            "network:router_interface",
            admin_state_up=False,
        )
    )
    ports.append(
        api_port(
            "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee",
            NET,
            "fa:16:3e:ee:ee:ee",
            [(SUB, "10.0.0.10")],
            "network:router_interface",
            device_id="other",
        )
    )
    records = [QR_PORT, QR_PORT2, "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"]
    _, r = _view(api_router(interface_port_ids=records), ports, [], False)
    assert r.namespace == namespace_name(ROUTER) == f"qrouter-{ROUTER}"
    assert [p.device for p in r.interfaces] == ["qr-bbbbbbbb-bb", "qr-cccccccc-cc"]
    assert [p.mtu for p in r.interfaces] == [1450, 1400]
    assert r.interfaces[1].mac == "fa:16:3e:cc:cc:cc"
    assert r.interfaces[0].cidrs == ("10.0.0.1/24",)
    assert r.gateway is not None and r.gateway.device == "qg-7e1c2d3e-4f"
    assert r.gateway.mtu == 1500 and r.gateway_ip == "172.24.4.10"
    assert r.enable_snat


def test_ports_that_only_claim_the_router_are_not_its_ports() -> None:
    """Another project's ports naming the router (device_id) with router owners: the router's
    records (gateway_port_id, interface_port_ids) decide, so neither becomes an interface, and the
    claimed gateway, though its id sorts first, does not replace the real one."""
    ports = router_ports()
    ports.append(
        api_port(
            "00000000-0000-4000-8000-000000000001",
            NET2,
            "fa:16:3e:00:00:01",
            [(SUB2, "10.1.0.1")],
            "network:router_interface",
            project_id="intruder",
        )
    )
    ports.append(
        api_port(
            "00000000-0000-4000-8000-000000000002",
            NET2,
            "fa:16:3e:00:00:02",
            [(SUB2, "10.1.0.2")],
            "network:router_gateway",
            project_id="intruder",
        )
    )
    _, r = _view(api_router(), ports, [], False)
    assert [p.id for p in r.interfaces] == [QR_PORT]
    assert r.gateway is not None and r.gateway.id == GW_PORT
    views = router_views([api_router()], ports, api_subnets(), api_networks(), [])
    assert [p.id for p in views[ROUTER].interfaces] == [QR_PORT] and views[ROUTER].gateway.id == GW_PORT


def test_gateway_port_ignored_without_gateway_info_and_snat_default() -> None:
    _, r = _view(api_router(gateway=False), router_ports(), [], False)
    assert r.gateway is None and r.active_floating_ips == ()
    cfg = L3Config(HOST, enable_snat_by_default=False)
    _, r = _view(api_router(enable_snat=None), router_ports(), [], False, cfg)
    assert not r.enable_snat


def test_port_forwarding_ranges_parsed() -> None:
    _, r = port_forwardings()
    pf_fip = next(f for f in r.floating_ips if f.id == FIP_PF)
    assert not pf_fip.associated
    assert [(p.protocol, p.internal_ports, p.external_ports) for p in pf_fip.port_forwardings] == [
        ("tcp", (22, 22), (2222, 2222)),
        ("tcp", (8000, 8010), (8000, 8010)),
        ("udp", (3000, 3010), (2000, 2010)),
    ]


def test_router_views_groups_by_router() -> None:
    other = api_router(gateway=False, id="other-router")
    views = router_views(
        [api_router(), other],
        router_ports(),
        api_subnets(),
        api_networks(),
        [api_fip(FIP1, "172.24.4.50", "10.0.0.5", VM_PORT)],
    )
    assert set(views) == {ROUTER, "other-router"}
    assert views["other-router"].interfaces == () and views["other-router"].floating_ips == ()
    assert [f.id for f in views[ROUTER].floating_ips] == [FIP1]


# --- against the real iptables (root only) -----------------------------------------------
def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables-restore"):
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


BACKENDS = [b for b in ("iptables", "iptables-legacy") if shutil.which(f"{b}-restore")]


def _in_netns(script: str, text: str) -> str:
    proc = subprocess.run(["unshare", "-n", "sh", "-c", script], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(not _can_unshare(), reason="needs root, unshare and iptables-restore")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_round_trip(case: str, backend: str) -> None:
    """Loaded into a throw-away netns, iptables-save gives back the same normal form."""
    text = render.iptables_ruleset(*CASES[case]())
    saved = _in_netns(f"{backend}-restore && {backend}-save", text)
    assert render.normalise(saved) == render.normalise(text)


@pytest.mark.skipif(not _can_unshare(), reason="needs root, unshare and iptables-restore")
@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_restore_replaces_whole_tables(backend: str) -> None:
    """A second restore (no --noflush) leaves exactly the new ruleset: stale pf chains go."""
    old = render.iptables_ruleset(*port_forwardings())
    new = render.iptables_ruleset(*gateway_snat())
    saved = _in_netns(f"{backend}-restore <<'EOF'\n{old}EOF\n{backend}-restore && {backend}-save", new)
    assert render.normalise(saved) == render.normalise(new)

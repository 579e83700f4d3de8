"""The objects of ``neutrino demo`` (the seed's Lab 10): built idempotently, removed by ``--clean``.

``build`` finds or creates every object by name through the public APIs (as
admin and as the ``demo`` user), records what it created in
``STATE/demo/created.json`` and returns a ``Lab`` once every instance is
ACTIVE; ``clean`` deletes exactly what that file lists and waits for the
agents to remove the namespaces.  The lab host's who-am-I HTTP server
(``LAB_HTTP``) is started by ``build`` and stopped by ``clean``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agents.auth import read_openrc
from neutrino.cli import process
from neutrino.cli.demo_client import Api, DemoError
from neutrino.cli.progress import Progress

FLAT_NET, FLAT_SUBNET = "flat-network", "flat-subnet"
VXLAN_NET, VXLAN_SUBNET = "vxlan-network", "vxlan-subnet"
VXLAN_CIDR = "172.18.0.0/24"
ROUTER = "demo-router"
KEY = "demo-key"
INSTANCES = (("demo-instance-1", VXLAN_NET), ("demo-instance-2", VXLAN_NET), ("demo-instance-3", FLAT_NET))
IMAGE, FLAVOR = "cirros", "m1.nano"
PHYSNET = "physnet"
USER_DATA = "#!/bin/sh\n# user data of the neutrino demo\necho 'hello from the neutrino demo'\n"
LAB_HTTP = "demo-lab-http"
LAB_HTTP_PORT = 8000
METADATA = "http://169.254.169.254"
DESCRIPTION = "created by neutrino demo"

# Answers every HTTP request with the client's address (what the lab host sees).
LAB_HTTP_CODE = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\\n" % (self.client_address[0], fmt % args)); sys.stdout.flush()
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


# --------------------------------------------------------------------------
# What the demo built
# --------------------------------------------------------------------------


@dataclass
class Created:
    """``STATE/demo/created.json``: (kind, id) of every object the demo created."""

    path: Path
    items: list[list[str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Created:
        try:
            return cls(path, [list(x) for x in json.loads(path.read_text())])
        except (OSError, ValueError):
            return cls(path)

    def add(self, kind: str, ident: str) -> None:
        self.items.append([kind, ident])
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("[\n" + ",\n".join(json.dumps(i) for i in self.items) + "\n]\n")
        os.replace(tmp, self.path)

    def ids(self, kind: str) -> list[str]:
        return [i for k, i in self.items if k == kind]


@dataclass
class Lab:
    """The resources of the demo, as the checks need them."""

    flat: dict[str, Any]
    flat_subnet: dict[str, Any]
    net: dict[str, Any]
    subnet: dict[str, Any]
    router: dict[str, Any]
    key: dict[str, Any]
    servers: dict[str, dict[str, Any]]  # name -> server (admin view: host included)
    ports: dict[str, dict[str, Any]]  # name -> its port
    fip: dict[str, Any]
    user_data: str
    lab_netns: str
    lab_ip: str

    def ip(self, name: str) -> str:
        return self.ports[name]["fixed_ips"][0]["ip_address"]

    @property
    def gateway_ip(self) -> str:
        return self.router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]

    def summary(self) -> dict[str, Any]:
        return {
            "lab_netns": self.lab_netns,
            "lab_ip": self.lab_ip,
            "router_gateway_ip": self.gateway_ip,
            "router_id": self.router["id"],
            "floating_ip": self.fip["floating_ip_address"],
            "networks": {
                n["name"]: {
                    "id": n["id"],
                    "type": n.get("provider:network_type"),
                    "segmentation_id": n.get("provider:segmentation_id"),
                    "mtu": n.get("mtu"),
                }
                for n in (self.flat, self.net)
            },
            "servers": {
                name: {
                    "id": s["id"],
                    "status": s["status"],
                    "host": s.get("OS-EXT-SRV-ATTR:host"),
                    "ip": self.ip(name),
                    "mac": self.ports[name]["mac_address"],
                }
                for name, s in self.servers.items()
            },
        }


# --------------------------------------------------------------------------
# Building it (idempotent)
# --------------------------------------------------------------------------


def _ensure(
    api: Api,
    created: Created,
    progress: Progress,
    collection: str,
    kind: str,
    name: str,
    body: dict[str, Any],
    **filters: Any,
) -> dict[str, Any]:
    found = api.first(collection, name=name, **filters)
    if found is not None:
        progress.say(f"{kind} {name}: exists ({found['id']})")
        return found
    obj = api.net("POST", f"/{collection}", {kind: {"name": name, **body}})[kind]
    created.add(kind, obj["id"])
    progress.say(f"{kind} {name}: created ({obj['id']})")
    return obj


def _open_default_group(demo: Api, created: Created, progress: Progress) -> None:
    """ICMP and SSH in from anywhere (IPv4), in the demo project's default group."""
    sg = demo.first("security-groups", name="default", project_id=demo.project_id)
    if sg is None:
        raise DemoError("the demo project has no default security group")
    want = [("icmp", None, None), ("tcp", 22, 22)]
    have = {
        (r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"))
        for r in sg.get("security_group_rules", [])
        if r["direction"] == "ingress"
        and r["ethertype"] == "IPv4"
        and r.get("remote_ip_prefix") in ("0.0.0.0/0", None)
        and r.get("remote_group_id") is None
    }
    for proto, lo, hi in want:
        if (proto, lo, hi) in have:
            continue
        rule = demo.net(
            "POST",
            "/security-group-rules",
            {
                "security_group_rule": {
                    "security_group_id": sg["id"],
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": proto,
                    "port_range_min": lo,
                    "port_range_max": hi,
                    "remote_ip_prefix": "0.0.0.0/0",
                    "description": DESCRIPTION,
                }
            },
            ok=(201, 409),
        )
        if rule is not None and "security_group_rule" in rule:
            created.add("security_group_rule", rule["security_group_rule"]["id"])
    progress.say("security group default: ingress ICMP and TCP 22 open")


def _ensure_router(
    demo: Api, created: Created, progress: Progress, flat: dict[str, Any], subnet: dict[str, Any]
) -> dict[str, Any]:
    router = _ensure(
        demo,
        created,
        progress,
        "routers",
        "router",
        ROUTER,
        {"external_gateway_info": {"network_id": flat["id"]}, "description": DESCRIPTION},
        project_id=demo.project_id,
    )
    if (router.get("external_gateway_info") or {}).get("network_id") != flat["id"]:
        router = demo.net(
            "PUT", f"/routers/{router['id']}", {"router": {"external_gateway_info": {"network_id": flat["id"]}}}
        )["router"]
        progress.say(f"router {ROUTER}: gateway set on {FLAT_NET}")
    ifaces = demo.net("GET", "/ports", device_id=router["id"], network_id=subnet["network_id"])["ports"]
    if not any(ip["subnet_id"] == subnet["id"] for p in ifaces for ip in p["fixed_ips"]):
        demo.net("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        progress.say(f"router {ROUTER}: interface on {VXLAN_SUBNET}")
    return router


def _ensure_key(demo: Api, created: Created, progress: Progress, files: Path) -> dict[str, Any]:
    found = demo.call("GET", "compute", f"/os-keypairs/{KEY}", ok=(200, 404))
    if found and "keypair" in found:
        progress.say(f"key pair {KEY}: exists")
        return found["keypair"]
    key = demo.call("POST", "compute", "/os-keypairs", {"keypair": {"name": KEY}})["keypair"]
    created.add("keypair", KEY)
    path = files / KEY
    path.write_text(key.get("private_key", ""))
    os.chmod(path, 0o600)
    progress.say(f"key pair {KEY}: created (private key in {path})")
    return key


def _servers(api: Api, names: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for s in api.call("GET", "compute", "/servers/detail")["servers"]:
        if s["name"] in names:
            out[s["name"]] = s
    return out


def _ensure_servers(
    demo: Api, created: Created, progress: Progress, nets: dict[str, str], user_data: str
) -> dict[str, str]:
    names = [n for n, _ in INSTANCES]
    have = _servers(demo, names)
    image = demo.call("GET", "image", "/v2/images", name=IMAGE)["images"]
    flavor = next((f for f in demo.call("GET", "compute", "/flavors")["flavors"] if f["name"] == FLAVOR), None)
    if not image or flavor is None:
        raise DemoError(f"image {IMAGE} or flavor {FLAVOR} is missing")
    ids = {}
    for name, net in INSTANCES:
        s = have.get(name)
        if s is not None and s["status"] == "ERROR":
            progress.say(f"server {name}: in ERROR ({(s.get('fault') or {}).get('message')}), booting it again")
            demo.call("DELETE", "compute", f"/servers/{s['id']}", ok=(204, 404))
            s = None
        if s is not None:
            ids[name] = s["id"]
            progress.say(f"server {name}: exists ({s['status']})")
            continue
        body = {
            "server": {
                "name": name,
                "imageRef": image[0]["id"],
                "flavorRef": flavor["id"],
                "networks": [{"uuid": nets[net]}],
                "key_name": KEY,
                "user_data": base64.b64encode(user_data.encode()).decode(),
            }
        }
        sid = demo.call("POST", "compute", "/servers", body)["server"]["id"]
        created.add("server", sid)
        ids[name] = sid
        progress.say(f"server {name}: booting on {net} ({sid})")
    return ids


def _wait_active(admin: Api, progress: Progress, ids: dict[str, str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        servers = {name: admin.call("GET", "compute", f"/servers/{sid}")["server"] for name, sid in ids.items()}
        failed = {n: s for n, s in servers.items() if s["status"] == "ERROR"}
        if failed:
            raise DemoError(
                "; ".join(f"{n} is in ERROR: {(s.get('fault') or {}).get('message')}" for n, s in failed.items())
            )
        active = sorted(n for n, s in servers.items() if s["status"] == "ACTIVE")
        if len(active) == len(ids):
            progress.say(
                f"instances ACTIVE: {len(ids)}/{len(ids)}; "
                + ", ".join(f"{n} on {s.get('OS-EXT-SRV-ATTR:host')}" for n, s in sorted(servers.items()))
            )
            return servers
        line = f"instances ACTIVE: {len(active)}/{len(ids)}" + (f" ({', '.join(active)})" if active else "")
        if line != last:
            progress.update(line)
            last = line
        if time.monotonic() > deadline:
            raise DemoError(
                f"instances not ACTIVE after {timeout:g} s: "
                f"{sorted(set(ids) - set(active))} (see the compute agent's log)"
            )
        time.sleep(0.3)


def _port_of(api: Api, server_id: str) -> dict[str, Any]:
    ports = api.net("GET", "/ports", device_id=server_id)["ports"]
    if not ports:
        raise DemoError(f"server {server_id} has no port")
    return ports[0]


def _ensure_fip(
    demo: Api, created: Created, progress: Progress, flat: dict[str, Any], port: dict[str, Any]
) -> dict[str, Any]:
    fip = demo.first("floatingips", port_id=port["id"])
    if fip is not None:
        progress.say(f"floating IP {fip['floating_ip_address']}: exists")
        return fip
    fip = demo.net(
        "POST",
        "/floatingips",
        {"floatingip": {"floating_network_id": flat["id"], "port_id": port["id"], "description": DESCRIPTION}},
    )["floatingip"]
    created.add("floatingip", fip["id"])
    progress.say(f"floating IP {fip['floating_ip_address']}: created on demo-instance-1")
    return fip


def _lab_http(layout: Any, lab_netns: str) -> None:
    """Start the lab host's who-am-I server unless it runs (pidfile in STATE/run)."""
    pf = layout.pidfile(LAB_HTTP)
    try:
        rec = pf.read()
    except process.PidFileError:
        rec = None
    if rec is not None and rec.is_alive():
        return
    argv = ["ip", "netns", "exec", lab_netns, sys.executable, "-c", LAB_HTTP_CODE, str(LAB_HTTP_PORT)]
    process.spawn(
        LAB_HTTP,
        argv,
        pidfile=pf,
        log_path=layout.log(LAB_HTTP),
        cwd=layout.root,
        extra={"netns": lab_netns, "port": LAB_HTTP_PORT},
    )


def build(layout: Any, cfg: Any, progress: Progress, boot_timeout: float) -> Lab:
    """Create (or find) everything; returns once every instance is ACTIVE."""
    from neutrino.system.netns import netns_exists

    lab_netns, lab_if = cfg.lab.host_netns, ipaddress.ip_interface(cfg.lab.cidr)
    if not lab_netns:
        raise DemoError("there is no lab host ([lab] host_netns is empty)")
    if not netns_exists(lab_netns):
        raise DemoError(f"the lab host namespace {lab_netns} does not exist (is the network node up?)")
    files = layout.root / "demo"
    files.mkdir(parents=True, exist_ok=True)
    created = Created.load(files / "created.json")
    admin = Api(read_openrc(layout.root / "admin-openrc"))
    demo = Api(read_openrc(layout.root / "demo-openrc"))
    try:
        flat = _ensure(
            admin,
            created,
            progress,
            "networks",
            "network",
            FLAT_NET,
            {
                "shared": True,
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": PHYSNET,
                "description": DESCRIPTION,
            },
        )
        flat_sub = _ensure(
            admin,
            created,
            progress,
            "subnets",
            "subnet",
            FLAT_SUBNET,
            {
                "network_id": flat["id"],
                "ip_version": 4,
                "cidr": str(lab_if.network),
                "gateway_ip": str(lab_if.ip),
                "description": DESCRIPTION,
            },
            network_id=flat["id"],
        )
        _open_default_group(demo, created, progress)
        net = _ensure(
            demo,
            created,
            progress,
            "networks",
            "network",
            VXLAN_NET,
            {"description": DESCRIPTION},
            project_id=demo.project_id,
        )
        sub = _ensure(
            demo,
            created,
            progress,
            "subnets",
            "subnet",
            VXLAN_SUBNET,
            {"network_id": net["id"], "ip_version": 4, "cidr": VXLAN_CIDR, "description": DESCRIPTION},
            network_id=net["id"],
        )
        # The router interface before the instances boot: their first lease then already
        # routes 169.254.169.254 via the router (not via the DHCP port of an isolated subnet).
        router = _ensure_router(demo, created, progress, flat, sub)
        key = _ensure_key(demo, created, progress, files)
        (files / "user-data").write_text(USER_DATA)
        ids = _ensure_servers(demo, created, progress, {VXLAN_NET: net["id"], FLAT_NET: flat["id"]}, USER_DATA)
        ports = {name: _port_of(demo, sid) for name, sid in ids.items()}
        fip = _ensure_fip(demo, created, progress, flat, ports["demo-instance-1"])
        _lab_http(layout, lab_netns)
        servers = _wait_active(admin, progress, ids, boot_timeout)
        router = demo.net("GET", f"/routers/{router['id']}")["router"]
        return Lab(
            flat=admin.net("GET", f"/networks/{flat['id']}")["network"],
            flat_subnet=flat_sub,
            net=admin.net("GET", f"/networks/{net['id']}")["network"],
            subnet=sub,
            router=router,
            key=key,
            servers=servers,
            ports=ports,
            fip=fip,
            user_data=USER_DATA,
            lab_netns=lab_netns,
            lab_ip=str(lab_if.ip),
        )
    finally:
        admin.close()
        demo.close()


# --------------------------------------------------------------------------
# --clean
# --------------------------------------------------------------------------


def clean(layout: Any, progress: Progress, timeout: float = 60.0) -> list[str]:
    """Delete what the demo created (newest first, by kind); returns what could not be deleted."""
    from neutrino.agents.compute.planner import netns_name
    from neutrino.system.netns import netns_exists

    files = layout.root / "demo"
    created = Created.load(files / "created.json")
    problems: list[str] = []
    pf = layout.pidfile(LAB_HTTP)
    try:
        rec = pf.read()
    except process.PidFileError:
        rec = None
    if rec is not None:
        process.stop(rec, timeout=5)
        pf.remove()
        progress.say("lab host HTTP server stopped")
    if not created.items:
        progress.say("nothing of the demo to remove")
        shutil.rmtree(files, ignore_errors=True)
        return problems
    admin = Api(read_openrc(layout.root / "admin-openrc"))
    try:

        def delete(path: str, what: str, service: str = "network") -> None:
            prefix = "/v2.0" if service == "network" else ""
            try:
                admin.call("DELETE", service, prefix + path, ok=(202, 204, 404))
                progress.say(f"{what}: deleted")
            except DemoError as exc:
                problems.append(str(exc))

        for fid in created.ids("floatingip"):
            delete(f"/floatingips/{fid}", f"floating IP {fid}")
        servers = created.ids("server")
        for sid in servers:
            delete(f"/servers/{sid}", f"server {sid}", "compute")
        for rid in created.ids("router"):
            router = admin.net("GET", f"/routers/{rid}", ok=(200, 404))
            if router and "router" in router:
                for p in admin.net("GET", "/ports", device_id=rid, device_owner="network:router_interface")["ports"]:
                    admin.net("PUT", f"/routers/{rid}/remove_router_interface", {"port_id": p["id"]}, ok=(200, 404))
            delete(f"/routers/{rid}", f"router {rid}")
        for sid in reversed(created.ids("subnet")):
            delete(f"/subnets/{sid}", f"subnet {sid}")
        for nid in reversed(created.ids("network")):
            delete(f"/networks/{nid}", f"network {nid}")
        for rid in created.ids("security_group_rule"):
            delete(f"/security-group-rules/{rid}", f"security group rule {rid}")
        if created.ids("keypair"):
            demo = Api(read_openrc(layout.root / "demo-openrc"))
            try:
                demo.call("DELETE", "compute", f"/os-keypairs/{KEY}", ok=(202, 204, 404))
                progress.say(f"key pair {KEY}: deleted")
            finally:
                demo.close()
    finally:
        admin.close()
    # The agents remove the namespaces of instances, routers and DHCP-served networks
    # (those on this machine show up here; on other hosts they are their agents' business).
    namespaces = (
        [netns_name(s) for s in servers]
        + [f"qrouter-{r}" for r in created.ids("router")]
        + [f"qdhcp-{n}" for n in created.ids("network")]
    )
    deadline = time.monotonic() + timeout
    while True:
        left = [ns for ns in namespaces if netns_exists(ns)]
        if not left:
            break
        if time.monotonic() > deadline:
            problems.append(f"namespaces still there: {', '.join(left)}")
            break
        progress.update(f"waiting for the agents to remove {len(left)} namespace(s)")
        time.sleep(0.2)
    if not problems:
        shutil.rmtree(files, ignore_errors=True)
    return problems

"""``neutrino demo``: the seed's Lab 10 on a running cloud, then a table of checks.

As admin: a flat external network ``flat-network`` on physnet ``physnet`` (the
lab host's wire, its subnet taken from ``[lab] cidr``, gateway = the lab host).
As the ``demo`` user: a VXLAN network ``vxlan-network`` (172.18.0.0/24), the
router ``demo-router`` (gateway on ``flat-network``, interface on the VXLAN
subnet), the key pair ``demo-key`` and a user-data file (both in
``STATE/demo/``), the default security group opened for ICMP and SSH
(ingress), ``demo-instance-1`` and ``-2`` on the VXLAN network,
``demo-instance-3`` on the flat network, and a floating IP on
``demo-instance-1``.  The compute API gives each instance's port the
instance's host name as ``dns_name`` (as Nova does when Neutron has DNS
integration), so neighbours resolve each other by name.

Idempotent: what exists (by name) is reused; what the demo itself created is
recorded in ``STATE/demo/created.json``, and ``--clean`` deletes exactly that.
Everything goes through the public APIs (Keystone, Neutron, Nova, Glance)
with the state dir's ``admin-openrc`` / ``demo-openrc``.

The checks run from inside the instances (their ``vm-<id>`` namespaces) and
from the lab host namespace; each prints the command a user runs to see the
same.  A tiny HTTP server in the lab host namespace (``demo-lab-http`` in
``STATE/run``, stopped by ``--clean`` and by ``neutrino down``) answers every
request with the address it came from: that is how SNAT is seen.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from neutrino.agents.auth import Credentials, read_openrc
from neutrino.cli import process
from neutrino.cli.layout import DEFAULT_STATE_DIR, CLIError, layout_of, load_config, self_command

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


class DemoError(Exception):
    """A step of the demo failed (reported as ``error: ...``)."""


# --------------------------------------------------------------------------
# The APIs, as one user
# --------------------------------------------------------------------------


class Api:
    """Password login for one openrc file; requests to the catalog's endpoints."""

    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": creds.username,
                            "domain": {"name": creds.user_domain},
                            "password": creds.password,
                        }
                    },
                },
                "scope": {"project": {"name": creds.project_name, "domain": {"name": creds.project_domain}}},
            }
        }
        self.http = httpx.Client(timeout=timeout, trust_env=False)
        try:
            r = self.http.post(f"{creds.auth_url.rstrip('/')}/auth/tokens", json=body)
        except httpx.HTTPError as exc:
            raise DemoError(f"cannot reach the identity API at {creds.auth_url}: {exc} (is neutrino up?)") from None
        if r.status_code != 201:
            raise DemoError(f"login as {creds.username} failed: HTTP {r.status_code} {r.text[:200]}")
        tok = r.json()["token"]
        self.token = r.headers["X-Subject-Token"]
        self.project_id = tok["project"]["id"]
        self.user = creds.username
        self.urls = {
            s["type"]: next(e["url"] for e in s["endpoints"] if e["interface"] == "public")
            for s in tok.get("catalog", [])
        }
        for kind in ("network", "compute", "image"):
            if kind not in self.urls:
                raise DemoError(f"the catalog has no {kind} endpoint")

    def call(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        **params: Any,
    ) -> Any:
        url = self.urls[service].rstrip("/") + path
        r = self.http.request(method, url, json=body, params=params or None, headers={"X-Auth-Token": self.token})
        if r.status_code not in ok:
            raise DemoError(f"{method} {path} as {self.user}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

    def net(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call(method, "network", f"/v2.0{path}", body, **kw)

    def first(self, collection: str, **filters: Any) -> dict[str, Any] | None:
        """The first ``collection`` entry matching ``filters`` (Neutron list filters)."""
        items = self.net("GET", f"/{collection}", **filters)[collection.replace("-", "_")]
        return items[0] if items else None

    def close(self) -> None:
        self.http.close()


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


class Progress:
    """One line per step on stderr; a waiting step rewrites its line on a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._open = False
        self._last = 0.0

    def say(self, msg: str) -> None:
        if self.quiet:
            return
        if self._open:
            sys.stderr.write("\n")
            self._open = False
        sys.stderr.write(f"[{time.monotonic() - self.t0:5.1f}s] {msg}\n")
        sys.stderr.flush()

    def update(self, msg: str) -> None:
        """A line that the next update replaces (on a terminal; else printed when it changes)."""
        if self.quiet:
            return
        now = time.monotonic()
        line = f"[{now - self.t0:5.1f}s] {msg}"
        if self.tty:
            sys.stderr.write(f"\r\033[K{line}")
            self._open = True
        elif now - self._last >= 1.0:  # a log file gets at most one such line a second
            sys.stderr.write(line + "\n")
            self._last = now
        sys.stderr.flush()


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
# Checks
# --------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    command: str  # what a user types to see it
    probe: Callable[[], tuple[bool, str]]
    ok: bool = False
    detail: str = ""
    seconds: float = 0.0


def _in(netns: str, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", "timed out")


def _retry(probe: Callable[[], tuple[bool, str]], deadline: float) -> tuple[bool, str]:
    while True:
        ok, detail = probe()
        if ok or time.monotonic() >= deadline:
            return ok, detail
        time.sleep(0.3)


def plan_checks(lab: Lab, console: str, lab_cmd: str) -> list[Check]:
    """The checks (pure: nothing runs until a probe is called)."""
    from neutrino.agents.compute.planner import netns_name

    ns = {name: netns_name(s["id"]) for name, s in lab.servers.items()}
    one, two, three = "demo-instance-1", "demo-instance-2", "demo-instance-3"
    prefix = ipaddress.ip_network(lab.subnet["cidr"]).prefixlen
    fip, gw = lab.fip["floating_ip_address"], lab.gateway_ip
    url = f"http://{lab.lab_ip}:{LAB_HTTP_PORT}/"

    def lease(name: str, plen: int) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            want = f"{lab.ip(name)}/{plen}"
            return want in r.stdout, want if want in r.stdout else f"eth0 has: {r.stdout.split()[3:4] or r.stderr}"

        return probe

    def ping(name: str, dst: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["ping", "-n", "-c", "1", "-W", "1", dst], timeout=5)
            return r.returncode == 0, "answers" if r.returncode == 0 else "no answer"

        return probe

    def lab_ping(dst: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(lab.lab_netns, ["ping", "-n", "-c", "1", "-W", "1", dst], timeout=5)
            return r.returncode == 0, "answers" if r.returncode == 0 else "no answer"

        return probe

    def resolves(name: str, other: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["getent", "hosts", other])
            got = r.stdout.split()[:1]
            return got == [lab.ip(other)], f"{other} -> {got[0] if got else '(nothing)'}"

        return probe

    def fetch(name: str, path: str, want: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            r = _in(ns[name], ["curl", "-s", "-m", "3", f"{METADATA}/{path}"])
            ok = r.stdout.strip() == want.strip()
            return ok, "matches" if ok else f"got {r.stdout.strip()[:40]!r}"

        return probe

    def snat() -> tuple[bool, str]:
        r = _in(ns[two], ["curl", "-s", "-m", "3", url])
        seen = r.stdout.strip()
        return seen == gw, f"the lab host sees {seen or '(nothing)'} (router gateway {gw})"

    return [
        Check(
            f"DHCP lease: {one} has {lab.ip(one)}/{prefix}",
            f"{console} {one} -- ip -4 addr show eth0",
            lease(one, prefix),
        ),
        Check(
            f"DHCP lease: {three} has {lab.ip(three)} on {FLAT_NET}",
            f"{console} {three} -- ip -4 addr show eth0",
            lease(three, ipaddress.ip_network(lab.flat_subnet["cidr"]).prefixlen),
        ),
        Check(
            f"{one} -> {two} ({lab.ip(two)}), VXLAN",
            f"{console} {one} -- ping -c1 {lab.ip(two)}",
            ping(one, lab.ip(two)),
        ),
        Check(f"DNS: {one} resolves {two}", f"{console} {one} -- getent hosts {two}", resolves(one, two)),
        Check(
            "metadata: openssh-key",
            f"{console} {one} -- curl -s {METADATA}/1.0/meta-data/public-keys/0/openssh-key",
            fetch(one, "1.0/meta-data/public-keys/0/openssh-key", lab.key["public_key"]),
        ),
        Check(
            "metadata: user-data",
            f"{console} {one} -- curl -s {METADATA}/1.0/user-data",
            fetch(one, "1.0/user-data", lab.user_data),
        ),
        Check(f"SNAT: {two} -> lab host {lab.lab_ip} from {gw}", f"{console} {two} -- curl -s {url}", snat),
        Check(f"floating IP {fip} ({one}) from the lab host", f"{lab_cmd} ping -c1 {fip}", lab_ping(fip)),
        Check(
            f"{three} -> lab host {lab.lab_ip}, flat network",
            f"{console} {three} -- ping -c1 {lab.lab_ip}",
            ping(three, lab.lab_ip),
        ),
        Check(
            f"metadata on {FLAT_NET} (from the DHCP namespace)",
            f"{console} {three} -- curl -s {METADATA}/1.0/user-data",
            fetch(three, "1.0/user-data", lab.user_data),
        ),
    ]


def run_checks(checks: list[Check], timeout: float, progress: Progress) -> None:
    """Run every check (in parallel), each retried until it passes or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    done: list[str] = []

    def one(c: Check) -> None:
        c.ok, c.detail = _retry(c.probe, deadline)
        c.seconds = time.monotonic() - t0
        done.append(c.name)
        progress.update(f"checks: {len(done)}/{len(checks)} done")

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        list(pool.map(one, checks))
    progress.say(f"checks: {sum(c.ok for c in checks)}/{len(checks)} passed")


def render_table(checks: list[Check]) -> str:
    w = max(len(c.name) for c in checks)
    lines = [f"{'check':{w}}  result  see it yourself", f"{'-' * w}  ------  {'-' * 15}"]
    for c in checks:
        lines.append(f"{c.name:{w}}  {'ok' if c.ok else 'FAILED':6}  {c.command}")
        if not c.ok:
            lines.append(f"{'':{w}}          ({c.detail})")
    return "\n".join(lines)


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


# --------------------------------------------------------------------------
# The subcommand
# --------------------------------------------------------------------------


def _command(layout: Any, sub: str) -> str:
    """How a user runs ``neutrino SUB`` on this state dir."""
    state = "" if layout.root == Path(DEFAULT_STATE_DIR) else f" --state-dir {shlex.quote(str(layout.root))}"
    return f"{self_command()} {sub}{state}"


def cmd_demo(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    if not (layout.root / "admin-openrc").exists():
        raise CLIError(f"no cloud in {layout.root} (run neutrino up first, or pass --state-dir)")
    cfg = load_config(layout.conf, layout.root)
    progress = Progress(quiet=False)
    try:
        if args.clean:
            problems = clean(layout, progress)
            if problems:
                raise CLIError("demo not completely removed:\n  " + "\n  ".join(problems))
            print("demo removed")
            return 0
        lab = build(layout, cfg, progress, args.boot_timeout)
    except (DemoError, httpx.HTTPError) as exc:
        raise CLIError(str(exc)) from None
    checks = plan_checks(lab, _command(layout, "console"), f"ip netns exec {lab.lab_netns}")
    progress.say(f"running {len(checks)} checks (each retried for up to {args.check_timeout:g} s)")
    run_checks(checks, args.check_timeout, progress)
    total = time.monotonic() - progress.t0
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": round(total, 2),
                    "ok": not failed,
                    **lab.summary(),
                    "checks": [
                        {
                            "name": c.name,
                            "ok": c.ok,
                            "detail": c.detail,
                            "command": c.command,
                            "seconds": round(c.seconds, 2),
                        }
                        for c in checks
                    ],
                },
                indent=1,
            )
        )
    else:
        print()
        for name, s in sorted(lab.servers.items()):
            extra = f", floating IP {lab.fip['floating_ip_address']}" if name == "demo-instance-1" else ""
            print(f"{name}: {s['status']} on {s.get('OS-EXT-SRV-ATTR:host')}, {lab.ip(name)}{extra}")
        print(
            f"router {ROUTER}: gateway {lab.gateway_ip} on {FLAT_NET}; lab host {lab.lab_ip} "
            f"(namespace {lab.lab_netns})"
        )
        print()
        print(render_table(checks))
        print()
        print(
            f"{len(checks) - len(failed)}/{len(checks)} checks passed in {total:.1f} s; "
            f"remove the demo with: {_command(layout, 'demo')} --clean"
        )
    return 1 if failed else 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="build the seed's Lab 10 and check it works",
        description="Build the seed's Lab 10 on the running cloud (as admin and the demo "
        "user: flat external network to the lab host, VXLAN network, router, three "
        "instances, a floating IP, key pair, user data, ICMP and SSH open) and print a "
        "table of checks, each with the command to see it yourself.  Idempotent.  Exit "
        "status 1 if a check fails.",
    )
    p.add_argument("--clean", action="store_true", help="remove everything the demo created")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--boot-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long instances may take to become ACTIVE (default: %(default)s)",
    )
    p.add_argument(
        "--check-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long each check is retried (default: %(default)s)",
    )
    p.set_defaults(func=cmd_demo)

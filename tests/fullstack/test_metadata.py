"""Instance metadata end to end: an instance asks http://169.254.169.254 and gets
its own key, user data and network layout — through a router (haproxy in
qrouter- on 9697) and on an isolated network (haproxy in qdhcp-) — and nobody
else's, also when instances behind one proxy ask at the same time over
kept-alive connections; the metadata API refuses unsigned requests; IMDSv2
tokens work; the guest keeps what it read at boot."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from neutrino.cli.main import load_config
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import client_context
from tests.fullstack.helpers import NEUTRINO, address, console, start_aio, wait_active

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        subprocess.run(["which", "haproxy"], capture_output=True).returncode, reason="haproxy not installed"
    ),
]

USER_DATA = "#!/bin/sh\necho hello from user data\n"
MD = "http://169.254.169.254"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    for state, conn in start_aio(tmp_path_factory):
        key = conn.compute.create_keypair(name="md-key")
        image, flavor = conn.image.find_image("cirros"), conn.compute.find_flavor("m1.nano")
        routed = conn.network.create_network(name="md-routed")
        sub = conn.network.create_subnet(network_id=routed.id, ip_version=4, cidr="10.70.0.0/24")
        router = conn.network.create_router(name="md-router")
        conn.network.add_interface_to_router(router, subnet_id=sub.id)
        isolated = conn.network.create_network(name="md-isolated")
        conn.network.create_subnet(network_id=isolated.id, ip_version=4, cidr="10.71.0.0/24")
        ud = base64.b64encode(USER_DATA.encode()).decode()
        servers = {}
        for name, net in (("md-a", routed), ("md-b", routed), ("md-iso", isolated)):
            servers[name] = conn.compute.create_server(
                name=name,
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": net.id}],
                key_name="md-key",
                user_data=ud,
            )
        for s in servers.values():
            wait_active(conn, s.id)
        yield {"state": state, "conn": conn, "key": key, "servers": servers}


def get(state, server: str, path: str, *headers: str, within: float = 30.0) -> subprocess.CompletedProcess[str]:
    """curl from inside the instance, retried while the path is still being set up."""
    argv = ["curl", "-s", "-m", "3", "-w", "\\n%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    deadline = time.monotonic() + within
    while True:
        r = console(state, server, *argv, f"{MD}/{path}")
        body, _, code = r.stdout.rpartition("\n")
        r.stdout, r.returncode = body, int(code) if code.isdigit() else 0
        if r.returncode in (200, 404, 400, 401, 403, 405) or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


@pytest.mark.parametrize("server", ["md-a", "md-iso"])
def test_instance_reads_its_own_metadata(cloud, server):
    state, conn, key, srv = cloud["state"], cloud["conn"], cloud["key"], cloud["servers"][server]
    listing = get(state, server, "1.0/meta-data")
    assert listing.returncode == 200, listing.stdout
    keys = listing.stdout.split("\n")
    for k in ("ami-launch-index", "hostname", "instance-id", "local-ipv4", "public-keys/", "reservation-id"):
        assert k in keys, keys
    assert get(state, server, "1.0/meta-data/public-keys/0/openssh-key").stdout.strip() == key.public_key.strip()
    assert (
        get(state, server, "1.0/user-data").stdout == USER_DATA.rstrip("\n")
        or get(state, server, "1.0/user-data").stdout == USER_DATA
    )
    assert get(state, server, "1.0/meta-data/local-ipv4").stdout == address(conn, srv.id)
    meta = json.loads(get(state, server, "openstack/latest/meta_data.json").stdout)
    assert meta["uuid"] == srv.id and meta["name"] == server
    assert meta["public_keys"] == {"md-key": key.public_key}
    port = next(conn.network.ports(device_id=srv.id))
    net = json.loads(get(state, server, "openstack/latest/network_data.json").stdout)
    assert net["links"][0]["ethernet_mac_address"] == port.mac_address
    assert net["networks"][0]["network_id"] == port.network_id


def test_forged_headers_do_not_change_who_is_asking(cloud):
    state, servers = cloud["state"], cloud["servers"]
    other = servers["md-b"].id
    forged = get(
        state,
        "md-a",
        "openstack/latest/meta_data.json",
        f"X-Instance-ID: {other}",
        f"X-Forwarded-For: {address(cloud['conn'], other)}",
        "X-Neutron-Router-ID: nope",
    )
    assert json.loads(forged.stdout)["uuid"] == servers["md-a"].id


# Runs inside an instance: n GETs of meta_data.json on one kept-alive connection; prints how
# many answers were not this instance's (or not 200).
_OWN = r"""
import http.client, json, sys
want, n = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection("169.254.169.254", 80, timeout=10)
wrong = 0
for i in range(n):
    path = "/openstack/latest/meta_data.json" if i % 2 else "/latest/meta-data/instance-id"
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        wrong += 1
    elif i % 2 and json.loads(body)["uuid"] != want:
        wrong += 1
    elif not i % 2 and body.decode() != "i-" + want[:8]:
        wrong += 1
print(wrong)
"""


def test_concurrent_instances_behind_one_proxy_get_their_own(cloud):
    """md-a and md-b ask through the same router proxy at the same time: haproxy may carry
    requests of both over the same kept-alive connection to the agent, and the agent resolves
    each request on its own headers."""
    state, servers = cloud["state"], cloud["servers"]
    procs = {
        name: subprocess.Popen(
            [
                *NEUTRINO,
                "console",
                "--state-dir",
                str(state),
                name,
                "--",
                sys.executable,
                "-c",
                _OWN,
                servers[name].id,
                "300",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("md-a", "md-b")
    }
    try:
        out = {name: p.communicate(timeout=120) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for name, (stdout, stderr) in out.items():
        assert procs[name].returncode == 0, stderr
        assert stdout.strip() == "0", (name, stdout, stderr)


def test_imdsv2_token_flow(cloud):
    state = cloud["state"]
    tok = console(
        state,
        "md-a",
        "curl",
        "-s",
        "-m",
        "3",
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 60",
        f"{MD}/latest/api/token",
    ).stdout
    assert tok
    ok = get(state, "md-a", "latest/meta-data/instance-id", f"X-aws-ec2-metadata-token: {tok}")
    assert ok.returncode == 200 and ok.stdout.startswith("i-")
    bad = get(state, "md-a", "latest/meta-data/instance-id", "X-aws-ec2-metadata-token: garbage")
    assert bad.returncode == 401


def test_metadata_api_refuses_unsigned_requests(cloud):
    state = cloud["state"]
    cfg = load_config(state / "neutrino.conf", state)
    rec = json.loads((state / "run" / "server.pid").read_text())
    port = cfg.metadata.bind_port + rec.get("extra", {}).get("port_offset", 0)
    url = f"https://127.0.0.1:{port}/latest/meta-data/"
    # As the metadata agent reaches it: mutual TLS with this node's certificate (role all).
    pki = pki_paths(state)
    http = httpx.Client(verify=client_context(pki.ca, pki.node_cert, pki.node_key), timeout=5)
    sid = cloud["servers"]["md-a"].id
    project = cloud["servers"]["md-a"].project_id
    assert http.get(url).status_code == 400
    bad = http.get(url, headers={"X-Instance-ID": sid, "X-Tenant-ID": project, "X-Instance-ID-Signature": "0" * 64})
    assert bad.status_code == 403
    sig = hmac.new(cfg.metadata.metadata_proxy_shared_secret.encode(), sid.encode(), hashlib.sha256).hexdigest()
    good = http.get(url, headers={"X-Instance-ID": sid, "X-Tenant-ID": project, "X-Instance-ID-Signature": sig})
    assert good.status_code == 200
    assert (
        http.get(
            url, headers={"X-Instance-ID": sid, "X-Tenant-ID": "someone-else", "X-Instance-ID-Signature": sig}
        ).status_code
        == 404
    )
    http.close()


def _haproxies(state) -> dict[int, list[int]]:
    """pid -> (real, effective, saved, fs uid) of this cloud's metadata proxies."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            status = open(f"/proc/{d}/status").read()
        except OSError:
            continue
        if argv and argv[0].endswith(b"haproxy") and any(str(state).encode() in a for a in argv):
            out[int(d)] = [int(x) for x in next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]]
    return out


def test_proxies_run_unprivileged_and_only_they_reach_the_socket(cloud):
    """Finding 12 (issue 13): the haproxy metadata proxies (one per router, one per isolated
    network here) drop root once bound; they still reach the agent's socket (the tests above),
    which is mode 0660 in a 0710 directory, both of the proxies' group."""
    import grp
    import pwd
    import stat

    from neutrino.agents.metadata import proxy_identity, socket_path

    state = cloud["state"]
    cfg = load_config(state / "neutrino.conf", state)
    user, group = proxy_identity(cfg)
    uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    procs = _haproxies(state)
    assert len(procs) >= 2, procs
    assert all(uids == [uid] * 4 for uids in procs.values()), (user, procs)
    sock = socket_path(cfg)
    st, dst = os.stat(sock), os.stat(os.path.dirname(sock))
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, gid)
    assert (stat.S_IMODE(dst.st_mode), dst.st_gid) == (0o710, gid)
    # The state directory is the owner's alone.
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700


def test_guest_keeps_what_it_read_at_boot(cloud):
    state, srv, key = cloud["state"], cloud["servers"]["md-a"], cloud["key"]
    d = state / "guests" / srv.id / "metadata"
    deadline = time.monotonic() + 60
    while not (d / "user-data").exists():
        assert time.monotonic() < deadline, "the guest did not store its metadata"
        time.sleep(0.5)
    assert (d / "openssh-key").read_text().strip() == key.public_key.strip()
    assert (d / "user-data").read_text().rstrip("\n") == USER_DATA.rstrip("\n")
    assert (d / "hostname").read_text().startswith("md-a")


# Sends raw bytes to 169.254.169.254:80 from inside the instance and prints the answer's
# status code (or "none" when the connection closed without one).  The send may fail
# half-way (the proxy answers and closes once its buffer is full): what was answered counts.
_RAW = r"""
import socket, sys
data = bytes.fromhex(sys.argv[1]) if sys.argv[1] else b""
big = int(sys.argv[2])
data = data.replace(b"@BIG@", b"a" * big)
for attempt in range(20):
    s = socket.create_connection(("169.254.169.254", 80), timeout=5)
    try:
        s.sendall(data)
    except OSError:
        pass
    buf = b""
    try:
        while b"\r\n" not in buf:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    except OSError:
        pass
    s.close()
    words = buf.split(b"\r\n", 1)[0].split()
    if len(words) >= 2 and words[0].startswith(b"HTTP/"):
        print(words[1].decode()); break
    import time; time.sleep(0.5)
else:
    print("none")
"""


def raw_status(state, server: str, request: bytes, big: int = 0) -> str:
    r = console(state, server, sys.executable, "-c", _RAW, request.hex(), str(big))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("server", ["md-a", "md-iso"])
def test_proxy_refuses_oversized_and_malformed_requests(cloud, server):
    state = cloud["state"]
    assert get(state, server, "latest/meta-data/instance-id").returncode == 200  # the path is up
    host = b"Host: 169.254.169.254\r\n"
    # a 64 KiB request line (URI) and a 64 KiB header: larger than haproxy's buffer
    assert raw_status(state, server, b"GET /latest/meta-data/@BIG@ HTTP/1.1\r\n" + host + b"\r\n", 64 * 1024) in (
        "400",
        "414",
        "431",
    )
    assert raw_status(
        state, server, b"GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + b"X-Big: @BIG@\r\n\r\n", 64 * 1024
    ) in ("400", "414", "431")
    # malformed request lines
    assert raw_status(state, server, b"THIS IS NOT HTTP\r\n\r\n") == "400"
    assert raw_status(state, server, b"GET /latest/meta-data/instance-id HTTP/9\r\n" + host + b"\r\n") == "400"
    assert raw_status(state, server, b"GET\r\n" + host + b"\r\n") == "400"
    # and a well-formed one still answers on a fresh connection
    assert (
        raw_status(
            state, server, b"GET /latest/meta-data/instance-id HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
        )
        == "200"
    )


@pytest.mark.parametrize("server", ["md-a", "md-iso"])
def test_only_get_is_allowed_through_the_chain(cloud, server):
    state = cloud["state"]
    for method in ("DELETE", "POST"):
        r = console(
            state,
            server,
            "curl",
            "-s",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            method,
            f"{MD}/latest/meta-data/instance-id",
        )
        assert r.stdout == "405", (method, r.stdout, r.stderr)
    host = b"Host: 169.254.169.254\r\nConnection: close\r\n\r\n"
    assert raw_status(state, server, b"DELETE /openstack/latest/meta_data.json HTTP/1.1\r\n" + host) == "405"

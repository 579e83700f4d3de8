"""HTTPS by default (issue 16): the real API server (``neutrino server``, its own process) on
127.0.0.1 with the node's files from ``ensure_node_pki`` (what the first ``neutrino up`` makes).

* every API (identity, network, compute, image, metadata) answers over HTTPS verified with
  ``STATE/pki/ca.pem``; the catalog lists ``https://``; without the CA verification fails; a
  wrong hostname fails; TLS 1.1 is refused;
* ``openssl s_client -showcerts`` sees leaf -> intermediate (issued by the root) and
  "Verify return code: 0 (ok)";
* rotation (``pki rotate``'s file replacement, then the server's reload) while a client
  loops new connections: no request fails, the new certificate is served, a bad new
  certificate keeps the old one serving, and a kept-alive connection keeps working.

Needs no root (loopback sockets only); it sits with the functional tier's real-process tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from neutrino import config as nconfig
from neutrino import server
from neutrino.agents.auth import read_openrc
from neutrino.cli import main as cli
from neutrino.cli.demo_client import Api
from neutrino.cli.layout import load_config
from neutrino.pki.ca import CertificateAuthority, ensure_node_pki, server_sans
from neutrino.pki.paths import PkiPaths
from neutrino.pki.tls import client_context
from neutrino.testing.ports import free_port_offset

HOST = "node1"
SANS = server_sans(HOST)  # node1, localhost, 127.0.0.1, ::1


@dataclass
class Node:
    state: Path
    cfg: nconfig.Config
    paths: PkiPaths
    proc: subprocess.Popen[bytes]
    log: Path

    def ports(self) -> dict[str, int]:
        c = self.cfg
        return {
            "identity": c.identity.bind_port,
            "network": c.default.bind_port,
            "compute": c.compute.bind_port,
            "image": c.image.bind_port,
            "metadata": c.metadata.bind_port,
        }

    def rotate(self) -> int:
        """What ``neutrino pki rotate`` does to the server's pair; the new leaf's serial."""
        ca = CertificateAuthority.load(self.paths.ca_dir, crl_path=self.paths.crl)
        return ca.issue_server(SANS, self.paths.server_cert, self.paths.server_key).serial_number


def _start(state: Path, reload_interval: str) -> Node:
    values = {**cli.initial_values(), ("pki", "reload_interval"): reload_interval}
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = state / "neutrino.conf"
    conf.write_text(nconfig.render_ini(values))
    paths = ensure_node_pki(state, host=HOST, role="all", sans=SANS)
    offset = free_port_offset()
    cfg = load_config(conf, state, offset)
    server.prepare(cfg)
    log = state / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neutrino.cli.main", "server", "--state-dir", str(state)]
            + ["--port-offset", str(offset)],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    node = Node(state, cfg, paths, proc, log)
    ctx = client_context(paths.ca)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited: {log.read_text()[-3000:]}"
        try:
            httpx.get(f"https://127.0.0.1:{cfg.metadata.bind_port}/", verify=ctx, timeout=1)
            httpx.get(f"https://127.0.0.1:{cfg.default.bind_port}/", verify=ctx, timeout=1)
            return node
        except httpx.TransportError:
            time.sleep(0.2)
    _stop(node)
    raise AssertionError(f"the server did not answer: {log.read_text()[-3000:]}")


def _stop(node: Node) -> None:
    node.proc.terminate()
    try:
        node.proc.wait(15)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        node.proc.wait(5)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = _start(tmp_path_factory.mktemp("tls") / "state", reload_interval="0.2")
    try:
        yield n
    finally:
        _stop(n)


def fetch(port: int, ctx: ssl.SSLContext, server_hostname: str = "localhost") -> tuple[int, int]:
    """(serial of the certificate the server presented, HTTP status) of ``GET /`` on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            serial = int(str(s.getpeercert()["serialNumber"]), 16)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    return serial, int(data.split(b" ", 2)[1])


def served_serial(node: Node) -> int:
    return fetch(node.ports()["network"], client_context(node.paths.ca))[0]


def test_every_api_serves_https_verified_with_the_ca(node: Node) -> None:
    ctx = client_context(node.paths.ca)
    for name, port in node.ports().items():
        r = httpx.get(f"https://127.0.0.1:{port}/", verify=ctx, timeout=10)
        assert r.status_code < 500, (name, r.status_code, r.text)
        assert r.http_version == "HTTP/1.1"
    # The openrc files carry the CA; the catalog lists https:// for every service.
    admin = read_openrc(node.state / "admin-openrc")
    assert admin.cacert == str(node.paths.ca) and admin.auth_url.startswith("https://")
    api = Api(admin)
    assert set(api.urls) >= {"identity", "network", "compute", "image"}
    assert all(url.startswith("https://") for url in api.urls.values()), api.urls
    assert api.net("GET", "/networks") is not None


def test_without_the_ca_verification_fails(node: Node) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{node.ports()['network']}/", timeout=10)  # the system's CAs only


def test_a_wrong_hostname_fails_verification(node: Node) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        fetch(node.ports()["identity"], client_context(node.paths.ca), server_hostname="evil.example")
    assert fetch(node.ports()["identity"], client_context(node.paths.ca), server_hostname=HOST)[1] < 500


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(node: Node) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(node.paths.ca)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 speaks TLS 1.1 only at level 0
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert fetch(node.ports()["network"], old)[1] == 200  # the same client at TLS 1.2: served
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        fetch(node.ports()["network"], old)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")
def test_openssl_s_client_shows_leaf_intermediate_root(node: Node) -> None:
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{node.ports()['network']}"]
        + ["-CAfile", str(node.paths.ca), "-showcerts"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "Verify return code: 0 (ok)" in out, out
    assert f" 0 s:CN = {HOST}, O = Neutrino" in out, out
    assert " 1 s:CN = Neutrino Intermediate CA, O = Neutrino" in out, out
    assert "i:CN = Neutrino Root CA, O = Neutrino" in out, out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2  # the server sends leaf + intermediate


def _wait_for_serial(node: Node, serial: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while served_serial(node) != serial:
        assert time.monotonic() < deadline, f"serial {serial:x} not served: {node.log.read_text()[-2000:]}"
        time.sleep(0.05)


def test_rotation_under_load_refuses_no_request(node: Node) -> None:
    ctx = client_context(node.paths.ca)
    port = node.ports()["network"]
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                serial, status = fetch(port, ctx)
                seen.append(serial)
                if status != 200:
                    failures.append(f"HTTP {status}")
            except (OSError, ssl.SSLError) as exc:
                failures.append(repr(exc))

    kept = httpx.Client(verify=ctx, timeout=10)  # a connection kept alive across the rotations
    assert kept.get(f"https://127.0.0.1:{port}/").status_code == 200
    first = served_serial(node)
    client = threading.Thread(target=loop)
    client.start()
    try:
        serials = []
        for _ in range(3):
            time.sleep(0.4)
            serials.append(node.rotate())
            _wait_for_serial(node, serials[-1])
        # A bad new certificate: the server keeps serving the last good one.
        good = serials[-1]
        node.paths.server_cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        time.sleep(1.0)  # several reload intervals
        assert served_serial(node) == good
        serials.append(node.rotate())
        _wait_for_serial(node, serials[-1])
        time.sleep(0.3)
    finally:
        stop.set()
        client.join(30)
    assert failures == [], failures[:5]
    assert len(seen) > 20 and seen[0] == first and seen[-1] == serials[-1]
    assert set(serials) <= set(seen)
    assert kept.get(f"https://127.0.0.1:{port}/").status_code == 200
    kept.close()
    assert "TLS files not reloaded" in node.log.read_text()  # the bad file was named in the log


def test_sighup_reloads_at_once(tmp_path: Path) -> None:
    n = _start(tmp_path / "state", reload_interval="3600")  # only SIGHUP reloads within the test
    try:
        before = served_serial(n)
        new = n.rotate()
        time.sleep(0.5)
        assert served_serial(n) == before  # nobody asked it to reload yet
        n.proc.send_signal(signal.SIGHUP)
        _wait_for_serial(n, new, timeout=5)
        assert n.proc.poll() is None  # SIGHUP reloads; it does not stop the server
    finally:
        _stop(n)


def test_a_missing_key_stops_the_server_with_its_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "neutrino.conf").write_text(nconfig.render_ini(cli.initial_values()))
    paths = ensure_node_pki(state, host=HOST, role="all", sans=SANS)
    os.unlink(paths.server_key)
    cfg = load_config(state / "neutrino.conf", state, free_port_offset())
    with pytest.raises(cli.CLIError) as err:  # what `neutrino up` runs before it starts the server
        cli.prepare(cfg)
    assert str(paths.server_key) in str(err.value) and "neutrino pki init" in str(err.value)
    run = subprocess.run(
        [sys.executable, "-m", "neutrino.cli.main", "server", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and str(paths.server_key) in run.stderr and "does not exist" in run.stderr

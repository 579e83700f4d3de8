"""A live ``neutrino up`` for the compatibility tests, and helpers that run the
unchanged ``openstack`` CLI against it with the generated openrc files."""

from __future__ import annotations

import os
import random
import shlex
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from neutrino.pki.tls import client_context

BIN = Path(sys.executable).parent
OPENSTACK = BIN / "openstack"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_offset() -> int:
    for _ in range(200):
        off = random.randrange(20000, 40000)
        if all(_port_free(port + off) for port in (9696, 5000, 8774, 9292)):
            return off
    raise RuntimeError("no free port pair")


def openrc_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    for line in path.read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if parts and parts[0] == "export":
            key, _, val = parts[1].partition("=")
            env[key] = val
    return env


@dataclass
class Cloud:
    state_dir: Path
    offset: int
    admin: dict[str, str]
    demo: dict[str, str]

    @property
    def network_url(self) -> str:
        scheme = self.admin["OS_AUTH_URL"].split(":", 1)[0]  # https unless `up --no-tls`
        return f"{scheme}://127.0.0.1:{9696 + self.offset}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """What a client of the APIs verifies them with: the openrc's CA (None with TLS off)."""
        cacert = self.admin.get("OS_CACERT")
        return client_context(cacert) if cacert else None

    def opener(self) -> urllib.request.OpenerDirector:
        """A urllib opener for the APIs: never via a proxy, verified with the CA."""
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ssl_context())
        )

    def osc(self, who: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.admin if who == "admin" else self.demo
        proc = subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert proc.returncode == 0, f"openstack {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    if not OPENSTACK.exists():
        pytest.skip("openstack CLI not installed")
    state = tmp_path_factory.mktemp("neutrino-state")
    offset = _pick_offset()
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "neutrino.cli.main"]
    subprocess.run(
        [*cmd, "up", "--no-agents", "--state-dir", str(state), "--port-offset", str(offset)],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    try:
        yield Cloud(state, offset, openrc_env(state / "admin-openrc"), openrc_env(state / "demo-openrc"))
    finally:
        subprocess.run([*cmd, "down", "--state-dir", str(state)], env=env, capture_output=True, timeout=60)

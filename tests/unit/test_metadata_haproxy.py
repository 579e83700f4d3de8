"""The haproxy metadata proxy configuration (golden files) and its process spec.

Goldens are ``tests/golden/metadata/<case>.conf``; regenerate with
``NEUTRINO_UPDATE_GOLDEN=1 pytest tests/unit/test_metadata_haproxy.py`` and
review the diff.  When haproxy is installed, every golden must pass
``haproxy -c``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from neutrino.agents.metadata import haproxy as h

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "metadata"
STATE = Path("/var/lib/neutrino")
RID = "6f0e4c1a-3b52-4f0e-9a47-0c7a1c2d9e11"
NID = "0b6e2d35-8c8f-4a36-bc43-6c1f2e4d8a90"
SOCK = "/var/lib/neutrino/metadata_proxy"

CASES = {
    "router": h.router_conf(STATE, RID, SOCK, user="root", group="root"),
    "network": h.network_conf(STATE, NID, SOCK, user="root", group="root"),
    "network-v6-debug": h.network_conf(
        STATE, NID, SOCK, user="neutron", group="neutron", debug=True, v6_interface="tap0b6e2d35-8c"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    text = h.render(CASES[case])
    path = GOLDEN / f"{case}.conf"
    if os.environ.get("NEUTRINO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_golden_is_valid_haproxy(case: str, tmp_path: Path) -> None:
    c = CASES[case]
    sock = tmp_path / "sock"
    conf = tmp_path / "h.conf"
    # user/group that exist here; the socket path need not exist for -c.
    conf.write_text(
        h.render(
            h.ProxyConf(
                c.uuid, c.kind, c.bind, str(sock), str(tmp_path / "pid"), "root", "root", c.debug, c.v6_interface
            )
        )
    )
    r = subprocess.run(["haproxy", "-c", "-f", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_router_headers_and_bind() -> None:
    text = h.render(CASES["router"])
    assert "    bind 0.0.0.0:9697\n" in text
    assert "    http-request del-header X-Neutron-Network-ID\n" in text
    assert f"    http-request set-header X-Neutron-Router-ID {RID}\n" in text
    assert "X-Neutron-Network-ID " + RID not in text
    assert f"    server metadata {SOCK}\n" in text
    assert "    http-request del-header X-Forwarded-For\n" in text
    assert "    option forwardfor\n" in text
    assert f"    pidfile     /var/lib/neutrino/external/pids/{RID}.pid.haproxy\n" in text
    assert "    maxconn     1024\n" in text
    assert "    nbthread    1\n" in text


def test_memory_and_keep_alive_settings() -> None:
    """The proxy keeps its connections to the agent alive (no per-request connect/close) and does
    not load the CA store for haproxy's internal HTTP client (~0.9 MB per namespace)."""
    for case in CASES.values():
        text = h.render(case)
        assert "http-server-close" not in text and "httpclose" not in text
        assert "\n    httpclient.ssl.verify none\n" in text.split("\ndefaults\n")[0]


def test_network_headers_and_bind() -> None:
    text = h.render(CASES["network"])
    assert "    bind 169.254.169.254:80\n" in text
    assert "    http-request del-header X-Neutron-Router-ID\n" in text
    assert f"    http-request set-header X-Neutron-Network-ID {NID}\n" in text
    assert "interface" not in text
    assert "    bind [fe80::a9fe:a9fe]:80 interface tap0b6e2d35-8c\n" in h.render(CASES["network-v6-debug"])


def test_same_config_ignores_pidfile_only() -> None:
    a = h.render(CASES["router"])
    b = a.replace("/var/lib/neutrino/external", "/elsewhere")
    assert h.same_config(a, b)
    assert not h.same_config(a, a.replace("9697", "9698"))
    assert not h.same_config(None, a)


def test_spec_is_recognised_by_uuid() -> None:
    s = h.spec(STATE, CASES["router"], "qrouter-" + RID)
    assert s.argv == ("haproxy", "-f", f"/var/lib/neutrino/ns-metadata-proxy/{RID}.conf")
    assert s.uuid == RID and RID in s.argv[-1]
    assert s.daemonizes and s.netns == "qrouter-" + RID
    assert s.pidfile == STATE / "external" / "pids" / f"{RID}.pid.haproxy"

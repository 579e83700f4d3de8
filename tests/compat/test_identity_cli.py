"""The unchanged ``openstack`` CLI against the identity API on a live uvicorn server."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from neutrino.config import defaults
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.identity.app import build_identity_app
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.tokens import TokenProvider

OPENSTACK = Path(sys.executable).parent / "openstack"
pytestmark = [pytest.mark.compat, pytest.mark.skipif(not OPENSTACK.exists(), reason="openstack CLI not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openrc_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    for line in path.read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if parts and parts[0] == "export":
            key, _, val = parts[1].partition("=")
            env[key] = val
    return env


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    # Plain HTTP on purpose: this server is a bare uvicorn without certificates; the CLI over HTTPS
    # is tests/compat/test_tls_cli.py.
    cfg = defaults(tmp_path).with_overrides({("identity", "bind_port"): str(port), ("DEFAULT", "use_ssl"): "false"})
    db = Database(f"sqlite:///{tmp_path}/t.db")
    upgrade(db.engine)
    bootstrap(cfg, db, tmp_path)
    app = build_identity_app(cfg, db, TokenProvider(tmp_path / "keys", db))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield _openrc_env(tmp_path / "admin-openrc")
    srv.should_exit = True
    thread.join(10)
    db.dispose()


def _osc(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"openstack {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_openstack_cli_identity_flow(server):
    env = server
    tok = _osc(env, "token", "issue", "-f", "value", "-c", "id", "-c", "project_id").split()
    assert tok[0].startswith("gAAAAA") and len(tok[1]) == 32
    pid = _osc(env, "project", "create", "X", "-f", "value", "-c", "id").strip()
    uid = _osc(env, "user", "create", "--password", "P", "--project", "X", "U", "-f", "value", "-c", "id").strip()
    _osc(env, "role", "add", "--project", "X", "--user", "U", "member")
    listing = _osc(env, "project", "list", "-f", "value", "-c", "ID", "-c", "Name")
    assert f"{pid} X" in listing.splitlines()
    assert {line.split()[1] for line in listing.splitlines()} == {"X", "admin", "demo", "service"}
    ra = _osc(
        env,
        "role",
        "assignment",
        "list",
        "--user",
        "U",
        "--project",
        "X",
        "--names",
        "-f",
        "value",
        "-c",
        "Role",
        "-c",
        "User",
        "-c",
        "Project",
    )
    assert ra.split() == ["member", "U@Default", "X@Default"]
    # The new user can log in to its project.
    user_env = {**env, "OS_USERNAME": "U", "OS_PASSWORD": "P", "OS_PROJECT_NAME": "X"}
    out = _osc(user_env, "token", "issue", "-f", "value", "-c", "user_id", "-c", "project_id").split()
    assert out == [pid, uid]

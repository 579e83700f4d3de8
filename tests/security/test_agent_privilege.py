"""Finding 12: processes with too much privilege.  The agents logged in with the cloud admin's
password (STATE/admin-openrc, copied to every node), and the haproxy metadata proxies ran as
root.  Now the identity bootstrap makes a service user (``neutron`` in project ``service``
with only role ``service``) whose credentials are STATE/agent-openrc (0600); the agents, and
nodes other than the controller, use only that; its token is allowed what the agents call
and refused the rest; the proxies switch to an unprivileged user.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino import config as nconfig
from neutrino.agents.auth import agent_credentials, read_openrc
from neutrino.db.engine import Database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

DHCP_AGENT = {
    "agent_type": "DHCP agent",
    "binary": "neutrino-dhcp-agent",
    "topic": "dhcp_agent",
    "host": "net1",
    "configurations": {"networks": 0},
}


class Cloud:
    """The real server's apps (identity, network with the agents' routes, compute), in process."""

    def __init__(self, state: Path) -> None:
        from neutrino import server

        self.cfg = nconfig.defaults(state).with_overrides(dict(nconfig.ALL_IN_ONE))
        self.boot = server.prepare(self.cfg)
        self.db = Database(self.cfg.database_url)
        apps, _ = server.build_all_apps(self.cfg, self.db)
        self.identity = TestClient(apps["identity"])
        self.network = TestClient(apps["network"], raise_server_exceptions=False)
        self.network.__enter__()

    def close(self) -> None:
        self.network.__exit__(None, None, None)
        self.db.dispose()

    def login(self, user: str, password: str, project: str) -> tuple[str, dict[str, Any]]:
        r = self.identity.post(
            "/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
                    },
                    "scope": {"project": {"name": project, "domain": {"id": "default"}}},
                }
            },
        )
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"], r.json()["token"]

    def net(self, method: str, path: str, token: str, body: Any = None) -> Any:
        return self.network.request(method, path, json=body, headers={"X-Auth-Token": token})


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    c = Cloud(tmp_path / "state")
    yield c
    c.close()


def test_bootstrap_makes_the_agents_service_user(cloud: Cloud) -> None:
    path = cloud.cfg.state_dir / "agent-openrc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = agent_credentials(cloud.cfg.state_dir)
    assert (creds.username, creds.project_name) == ("neutron", "service")
    admin = read_openrc(cloud.cfg.state_dir / "admin-openrc")
    assert creds.password != admin.password
    _, token = cloud.login(creds.username, creds.password, creds.project_name)
    assert [r["name"] for r in token["roles"]] == ["service"]  # nothing implied: no admin, no member


def test_the_service_token_may_do_what_agents_do(cloud: Cloud) -> None:
    creds = agent_credentials(cloud.cfg.state_dir)
    svc, _ = cloud.login(creds.username, creds.password, creds.project_name)
    demo, demo_token = cloud.login("demo", cloud.boot["demo_password"], "demo")
    net = cloud.net("POST", "/v2.0/networks", demo, {"network": {"name": "n"}}).json()["network"]
    sub = cloud.net(
        "POST", "/v2.0/subnets", demo, {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}
    ).json()["subnet"]

    def ok(resp: Any, status: int = 200) -> Any:
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    # The change feed and the agents' reports.
    ok(cloud.net("GET", "/neutrino/v1/snapshot", svc))
    ok(cloud.net("GET", "/neutrino/v1/changes?since=0", svc))
    agents = ok(cloud.net("GET", "/neutrino/v1/snapshot?resources=agent", svc))["resources"]["agents"]
    assert agents == []
    ok(cloud.net("POST", "/neutrino/v1/agents/report", svc, {"agent": DHCP_AGENT}))
    # The DHCP agent's port: in the network owner's project, bound to its host.
    port = ok(
        cloud.net(
            "POST",
            "/v2.0/ports",
            svc,
            {
                "port": {
                    "network_id": net["id"],
                    "device_owner": "network:dhcp",
                    "device_id": "dhcpabc-" + net["id"],
                    "binding:host_id": "net1",
                    "fixed_ips": [{"subnet_id": sub["id"]}],
                    "project_id": demo_token["project"]["id"],
                    "name": "",
                }
            },
        ),
        201,
    )["port"]
    assert port["project_id"] == demo_token["project"]["id"]
    ok(
        cloud.net(
            "PUT",
            f"/v2.0/ports/{port['id']}",
            svc,
            {"port": {"binding:host_id": "net2", "fixed_ips": [{"subnet_id": sub["id"]}]}},
        )
    )
    ok(cloud.net("POST", "/neutrino/v1/ports/status", svc, {"host": "net2", "ports": {port["id"]: "ACTIVE"}}))
    ok(cloud.net("POST", "/neutrino/v1/floatingips/status", svc, {"host": "net2", "floatingips": {}}))
    ok(cloud.net("GET", "/neutrino/v1/servers?host=net2", svc))
    ok(cloud.net("DELETE", f"/v2.0/ports/{port['id']}", svc), 204)


def test_the_service_token_may_not_do_more(cloud: Cloud) -> None:
    creds = agent_credentials(cloud.cfg.state_dir)
    svc, _ = cloud.login(creds.username, creds.password, creds.project_name)
    demo, demo_token = cloud.login("demo", cloud.boot["demo_password"], "demo")
    net = cloud.net("POST", "/v2.0/networks", demo, {"network": {"name": "n"}}).json()["network"]
    pid = demo_token["project"]["id"]
    refused = [
        ("POST", "/v2.0/networks", {"network": {"name": "mine"}}),
        ("PUT", f"/v2.0/networks/{net['id']}", {"network": {"name": "taken"}}),
        ("DELETE", f"/v2.0/networks/{net['id']}", None),
        ("POST", "/v2.0/routers", {"router": {"name": "r"}}),
        ("POST", "/v2.0/security-groups", {"security_group": {"name": "sg"}}),
        ("PUT", f"/v2.0/quotas/{pid}", {"quota": {"network": 1000}}),
    ]
    for method, path, body in refused:
        r = cloud.net(method, path, svc, body)
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
    assert cloud.net("GET", "/v2.0/agents", svc).json()["agents"] == []  # admin only
    # The identity API's admin side.
    for method, path, body in (
        ("GET", "/v3/users", None),
        ("GET", "/v3/role_assignments", None),
        ("POST", "/v3/users", {"user": {"name": "evil", "password": "x"}}),
        ("POST", "/v3/projects", {"project": {"name": "evil"}}),
        ("GET", "/v3/services", None),
    ):
        r = cloud.identity.request(method, path, json=body, headers={"X-Auth-Token": svc})
        assert r.status_code == 403, (method, path, r.text)
    # The agents' routes stay closed to project members.
    for path in ("/neutrino/v1/snapshot", "/neutrino/v1/changes?since=0", "/neutrino/v1/servers"):
        assert cloud.net("GET", path, demo).status_code == 403


def test_the_agents_log_in_as_the_service_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --no-tls (plain HTTP), runner.run_agent takes its credentials from agent-openrc,
    never admin-openrc.  (Over TLS the agents use the node's certificate: tests/unit/test_agent_tls.py.)"""
    import asyncio

    from neutrino.agents import runner
    from neutrino.identity import bootstrap as boot

    state = tmp_path / "state"
    state.mkdir()
    for account in ("admin", "agent"):
        user, project, _role = boot.ACCOUNTS[account]
        (state / f"{account}-openrc").write_text(
            boot._openrc("http://127.0.0.1:1/v3", "RegionOne", user, f"pw-{account}", project)
        )
    seen = []

    class Stop(Exception):
        pass

    def capture(creds: Any, *a: Any, **kw: Any) -> None:
        seen.append(creds)
        raise Stop

    monkeypatch.setattr(runner, "PasswordTokenSource", capture)
    monkeypatch.setattr(runner, "load_driver", lambda kind: lambda cfg, host: object())
    with pytest.raises(Stop):
        asyncio.run(runner.run_agent("ovs", nconfig.defaults(state).with_overrides({("DEFAULT", "use_ssl"): "false"})))
    assert [(c.username, c.password) for c in seen] == [("neutron", "pw-agent")]


def test_a_node_needs_the_agent_credentials_not_the_admins(tmp_path: Path) -> None:
    """With --no-tls, ``neutrino up --role compute`` on a node with only the admin's openrc
    refuses, naming agent-openrc; ``neutrino agent`` without it says so too (no traceback).
    Over TLS both name the node's certificate instead: the admin's password is never a way in."""
    from neutrino.cli import main as cli

    state = tmp_path / "compute1"
    state.mkdir()
    values = cli.initial_values()
    values.update(
        {
            ("DEFAULT", "roles"): "compute",
            ("DEFAULT", "server_url"): "http://127.0.0.1:9",
            ("DEFAULT", "use_ssl"): "false",
        }
    )
    (state / "neutrino.conf").write_text(nconfig.render_ini(values))
    (state / "admin-openrc").write_text("export OS_PASSWORD=admin-secret\n")

    def neutrino(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neutrino.cli.main", *args, "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    up = neutrino("up")
    assert up.returncode != 0 and f"{state / 'agent-openrc'} is missing" in up.stderr, up.stderr
    agent = neutrino("agent", "compute")
    assert agent.returncode == 1 and "agent-openrc is missing" in agent.stderr and "Traceback" not in agent.stderr
    values.update({("DEFAULT", "server_url"): "https://127.0.0.1:9", ("DEFAULT", "use_ssl"): "true"})
    (state / "neutrino.conf").write_text(nconfig.render_ini(values))
    node_pem = str(state / "pki" / "node.pem")
    up = neutrino("up")
    assert up.returncode != 0 and node_pem in up.stderr and "agent-openrc" not in up.stderr, up.stderr
    agent = neutrino("agent", "compute")
    assert agent.returncode == 1 and node_pem in agent.stderr and "Traceback" not in agent.stderr, agent.stderr


def test_metadata_proxies_run_unprivileged(tmp_path: Path) -> None:
    """The proxies' configuration names an unprivileged user (haproxy, else nobody), never root,
    and its group is the metadata socket's; ``metadata_proxy_user`` / ``_group`` override it."""
    import pwd

    from neutrino.agents.metadata import MetadataProxies, socket_path
    from neutrino.agents.metadata import haproxy as conf
    from neutrino.fakes.host import FakeHost

    cfg = nconfig.defaults(tmp_path)
    proxies = MetadataProxies.from_config(cfg, FakeHost())
    expect = "haproxy" if any(p.pw_name == "haproxy" for p in pwd.getpwall()) else "nobody"
    assert proxies.user == expect and proxies.user != "root"
    text = conf.render(conf.router_conf(tmp_path, "r1", proxies.socket, user=proxies.user, group=proxies.group))
    assert f"    user        {expect}\n" in text and f"    group       {proxies.group}\n" in text
    assert proxies.group != "root"
    # The socket is outside the private state directory, where the proxies' group can reach it.
    assert not socket_path(cfg).startswith(str(tmp_path)) and socket_path(cfg).startswith("/run/neutrino/")
    custom = cfg.with_overrides(
        {("metadata", "metadata_proxy_user"): "nobody", ("metadata", "metadata_proxy_group"): "nogroup"}
    )
    assert (
        MetadataProxies.from_config(custom, FakeHost()).user,
        MetadataProxies.from_config(custom, FakeHost()).group,
    ) == ("nobody", "nogroup")
    with pytest.raises(ValueError, match="metadata_proxy_user"):
        MetadataProxies.from_config(
            cfg.with_overrides({("metadata", "metadata_proxy_user"): "no-such-user-x"}), FakeHost()
        )


def test_the_service_role_has_no_admin_rights_in_the_compute_api(compute_env) -> None:
    """Agents never call Nova's API; their service role must not see or act on every project's
    servers there (it keeps its internal /neutrino/v1/servers routes)."""
    env = compute_env
    env.agent("cn1")
    net = env.network(as_="demo")
    sid = env.boot(as_="demo", networks=[{"uuid": net["id"]}])["server"]["id"]
    assert env.call("GET", f"servers/{sid}", "service").status_code == 404
    assert env.call("DELETE", f"servers/{sid}", "service").status_code == 404
    assert env.call("GET", "servers?all_tenants=1", "service").status_code == 403
    assert env.ok(env.call("GET", "servers", "service"))["servers"] == []
    assert env.ok(env.neutron("GET", f"/neutrino/v1/servers/{sid}", "service"))
    assert env.show(sid)["status"] == "BUILD"

"""Node roles: which agents a role runs, the configuration checks that go with
roles, and ``neutrino up --role`` refusing what it cannot do (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino import config as nconfig
from neutrino.cli import host
from neutrino.cli import main as cli
from neutrino.config_checks import validate


@pytest.mark.parametrize(
    "roles, agents",
    [
        (("all",), ("ovs", "dhcp", "l3", "metadata", "compute")),
        (("controller",), ()),
        (("network",), ("ovs", "dhcp", "l3", "metadata")),
        (("compute",), ("ovs", "compute")),
        (("controller", "network"), ("ovs", "dhcp", "l3", "metadata")),  # the seed's Lab 8 controller
        (("compute", "network"), ("ovs", "dhcp", "l3", "metadata", "compute")),
    ],
)
def test_agents_of_roles(roles, agents) -> None:
    assert host.agents_for(roles) == agents


def test_all_expands_to_every_role() -> None:
    assert host.expand_roles(("all",)) == ("controller", "network", "compute")
    assert host.expand_roles(("compute", "controller")) == ("controller", "compute")


def _cfg(tmp_path: Path, **values: str) -> nconfig.Config:
    vals = cli.initial_values()
    for key, val in values.items():
        sec, _, name = key.partition("__")
        vals[(sec, name)] = val
    path = tmp_path / "neutrino.conf"
    path.write_text(nconfig.render_ini(vals))
    return nconfig.load(path, state_dir=tmp_path)


def test_a_node_without_the_controller_role_needs_server_url(tmp_path: Path) -> None:
    errs = validate(_cfg(tmp_path, DEFAULT__roles="compute"))
    assert any("server_url" in e for e in errs), errs
    ok = _cfg(tmp_path, DEFAULT__roles="compute", DEFAULT__server_url="http://192.0.2.11:9696")
    assert validate(ok) == []
    assert cli._server_url(ok) == "http://192.0.2.11:9696"
    bad = _cfg(tmp_path, DEFAULT__roles="network", DEFAULT__server_url="controller:9696")
    assert any("not an http(s) URL" in e for e in validate(bad))
    assert any("choose from" in e for e in validate(_cfg(tmp_path, DEFAULT__roles="storage")))


def test_server_url_defaults_to_this_nodes_api(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, DEFAULT__bind_port="19696")
    assert cli._server_url(cfg) == "https://127.0.0.1:19696/"


def test_up_role_refuses_an_agent_node_without_its_configuration(tmp_path: Path, capsys) -> None:
    state = tmp_path / "compute1"
    assert cli.main(["up", "--role", "compute", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "server_url" in err and "agent-openrc" in err
    assert not (state / "neutrino.conf").exists()


def test_up_role_rejects_unknown_roles(tmp_path: Path, capsys) -> None:
    assert cli.main(["up", "--role", "storage", "--state-dir", str(tmp_path / "s")]) == 1
    assert "choose from" in capsys.readouterr().err


def test_up_agent_node_needs_the_controllers_credentials_and_server(tmp_path: Path, capsys, free_port) -> None:
    state = tmp_path / "net"
    state.mkdir()
    vals = {
        **cli.initial_values(),
        ("DEFAULT", "roles"): "network",
        ("DEFAULT", "server_url"): f"http://127.0.0.1:{free_port()}",
    }
    (state / "neutrino.conf").write_text(nconfig.render_ini(vals))
    assert cli.main(["up", "--state-dir", str(state)]) == 1
    # TLS on (the default): a joined node imports its bundle (its agents present node.pem, no
    # password, so no agent-openrc), and never makes a CA.
    err = capsys.readouterr().err
    assert "TLS is on but" in err and "neutrino pki import" in err and not (state / "pki" / "ca").exists()
    assert "agent-openrc" not in err
    vals[("DEFAULT", "use_ssl")] = "false"  # plain HTTP, as its server_url says: the service user's password
    (state / "neutrino.conf").write_text(nconfig.render_ini(vals))
    assert cli.main(["up", "--state-dir", str(state)]) == 1
    assert "agent-openrc is missing" in capsys.readouterr().err
    (state / "agent-openrc").write_text("export OS_AUTH_URL=http://127.0.0.1:1/v3\n")
    assert cli.main(["up", "--state-dir", str(state)]) == 1
    assert "does not answer" in capsys.readouterr().err
    assert not list((state / "run").glob("*.pid"))  # nothing was started

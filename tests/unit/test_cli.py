"""The neutrino command: up / status / down / check-config / server.

The flow tests run against a fake server (a tiny HTTP server on the two
configured ports) so they test the CLI alone; ``test_real_server_flow`` runs
the real ``neutrino.server`` once it exists.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neutrino import config as nconfig
from neutrino import config_checks
from neutrino.cli import layout, process
from neutrino.cli import main as cli

FAKE_SERVER = textwrap.dedent("""
    import http.server, sys, threading
    from neutrino import config
    from neutrino.cli.layout import with_port_offset

    state, offset, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "crash":
        print("fake server: giving up", flush=True)
        sys.exit(7)
    cfg = with_port_offset(config.load(state + "/neutrino.conf", state_dir=state), offset)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401 if self.path.startswith("/v3") else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    ports = [cfg.identity.bind_port] if mode == "half" else [cfg.identity.bind_port, cfg.default.bind_port]
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", p), H) for p in ports]
    if cfg.default.use_ssl:  # HTTPS like the real server, with the files `up` created
        from neutrino.pki.paths import pki_paths
        from neutrino.pki.tls import server_context

        p = pki_paths(state)
        ctx = server_context(p.server_cert, p.server_key, p.ca, p.crl)
        for s in servers:
            s.socket = ctx.wrap_socket(s.socket, server_side=True)
    print("fake server listening on", ports, flush=True)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()
""")


def write_conf(state: Path, network_port: int, identity_port: int, **extra: str) -> Path:
    values = cli.initial_values()
    values[("DEFAULT", "bind_port")] = str(network_port)
    values[("identity", "bind_port")] = str(identity_port)
    for key, val in extra.items():
        sec, _, name = key.partition("__")
        values[(sec, name)] = val
    state.mkdir(parents=True, exist_ok=True)
    path = state / "neutrino.conf"
    path.write_text(nconfig.render_ini(values))
    return path


@pytest.fixture
def fake_server(tmp_path: Path):
    """FAKE_SERVER in place of the real server; returns a dict to steer it (its "hooks" go to
    ``cli.main``)."""
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    steer = {"mode": "ok", "prepared": []}

    def argv(layout, offset):
        return [sys.executable, str(script), str(layout.root), str(offset), steer["mode"]]

    steer["hooks"] = cli.ServerHooks(prepare=lambda cfg: steer["prepared"].append(cfg), argv=argv)
    return steer


@pytest.fixture
def state(tmp_path: Path, free_port):
    """A state dir with a config on free ports; everything started is stopped at the end."""
    d = tmp_path / "state"
    write_conf(d, free_port(), free_port())
    yield d
    cli.main(["down", "--state-dir", str(d), "--timeout", "2"])


def run(capsys, *argv: str, hooks: cli.ServerHooks | None = None) -> tuple[int, str]:
    code = cli.main(list(argv), hooks=hooks)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_help_and_no_command(capsys) -> None:
    assert cli.main([]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert "neutrino" in capsys.readouterr().out


def test_state_dir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUTRINO_STATE_DIR", "/tmp/elsewhere")
    assert cli.build_parser().parse_args(["status"]).state_dir == "/tmp/elsewhere"
    monkeypatch.delenv("NEUTRINO_STATE_DIR")
    assert cli.build_parser().parse_args(["down"]).state_dir == cli.DEFAULT_STATE_DIR


def test_initial_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "neutrino.conf"
    path.write_text(nconfig.render_ini(cli.initial_values()))
    cfg = cli.load_config(path, tmp_path)
    assert cfg.ml2_type_vxlan.vni_ranges == ("1:1000",)
    assert cfg.database_url == f"sqlite:///{tmp_path / 'neutrino.db'}"
    assert config_checks.validate(cfg) == []
    moved = layout.with_port_offset(cfg, 100)
    assert (moved.default.bind_port, moved.identity.bind_port) == (9796, 5100)
    assert layout.endpoints(moved) == {"identity": "https://127.0.0.1:5100/v3", "network": "https://127.0.0.1:9796/"}
    plain = layout.with_port_offset(cli.load_config(path, tmp_path, overrides={("DEFAULT", "use_ssl"): "false"}), 100)
    assert layout.endpoints(plain) == {"identity": "http://127.0.0.1:5100/v3", "network": "http://127.0.0.1:9796/"}


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"ml2__tenant_network_types": "vlan,gre"}, "tenant_network_types: gre not in type_drivers"),
        ({"ml2_type_vxlan__vni_ranges": "10:5"}, "vni_ranges"),
        ({"ml2_type_vlan__network_vlan_ranges": "physnet:1:5000"}, "network_vlan_ranges"),
        ({"DEFAULT__api_workers": "0"}, "api_workers"),
        ({"DEFAULT__bind_host": "localhost"}, "not an IP address"),
        ({"database__connection": "mysql://x"}, "only sqlite"),
    ],
)
def test_check_config_reports_bad_values(tmp_path: Path, capsys, extra, message) -> None:
    write_conf(tmp_path, 19696, 15000, **extra)
    code, out = run(capsys, "check-config", "--state-dir", str(tmp_path))
    assert code == 1
    assert message in out


def test_check_config(tmp_path: Path, capsys) -> None:
    write_conf(tmp_path, 19696, 19696)
    code, out = run(capsys, "check-config", "--state-dir", str(tmp_path))
    assert code == 1 and "both 19696" in out
    write_conf(tmp_path, 19696, 15000)
    code, out = run(capsys, "check-config", "--state-dir", str(tmp_path))
    assert code == 0, out
    assert "OK" in out and "https://127.0.0.1:19696/" in out
    (tmp_path / "neutrino.conf").write_text("[DEFAULT]\nno_such_option = 1\n")
    code, out = run(capsys, "check-config", "--state-dir", str(tmp_path))
    assert code == 1 and "unknown option" in out
    code, out = run(capsys, "check-config", "--state-dir", str(tmp_path / "missing"))
    assert code == 1 and "does not exist" in out


def test_up_status_down_flow(state: Path, fake_server, capsys) -> None:
    hooks = fake_server["hooks"]
    code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
    assert code == cli.EXIT_NOT_RUNNING, out

    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)
    assert code == 0, out
    assert "neutrino is up in" in out
    assert len(fake_server["prepared"]) == 1
    rec = cli.Layout(state).pidfile("server").read()
    assert rec is not None and rec.is_alive()
    assert os.getsid(rec.pid) == rec.pid
    assert "fake server listening" in (state / "log" / "server.log").read_text()

    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)
    assert code == 0 and "already running" in out
    assert len(fake_server["prepared"]) == 1

    code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
    assert code == cli.EXIT_RUNNING, out
    assert f"pid {rec.pid}" in out and "answers (HTTP 401)" in out and "answers (HTTP 200)" in out

    code, out = run(capsys, "down", "--state-dir", str(state), hooks=hooks)
    assert code == 0, out
    assert "server: stopped" in out
    assert not rec.is_alive()
    assert not (state / "run" / "server.pid").exists()

    code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
    assert code == cli.EXIT_NOT_RUNNING
    code, out = run(capsys, "down", "--state-dir", str(state), hooks=hooks)
    assert code == 0 and "not running" in out
    assert (state / "neutrino.conf").exists()

    code, out = run(capsys, "down", "--purge", "--state-dir", str(state), hooks=hooks)
    assert code == 0 and not state.exists()
    code, out = run(capsys, "down", "--purge", "--state-dir", str(state), hooks=hooks)
    assert code == 0


def test_first_up_writes_the_config(tmp_path: Path, fake_server, capsys, free_port) -> None:
    # Move the default ports out of the way with --port-offset.
    state = tmp_path / "fresh"
    net, ident = free_port(), free_port()
    d = nconfig.defaults(state)
    hooks = dataclasses.replace(
        fake_server["hooks"],
        initial_values=lambda: {
            **nconfig.ALL_IN_ONE,
            ("database", "connection"): "",
            ("DEFAULT", "bind_port"): str(net - 1000),
            ("identity", "bind_port"): str(ident - 1000),
        },
    )
    assert d.default.bind_port == 9696
    try:
        code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), "--port-offset", "1000", hooks=hooks)
        assert code == 0, out
        assert f"wrote {state / 'neutrino.conf'}" in out
        assert f"https://127.0.0.1:{net}/" in out and "TLS           on" in out
        assert (state / "pki" / "ca.pem").exists() and (state / "pki" / "server.key").stat().st_mode & 0o777 == 0o600
        cfg = fake_server["prepared"][0]
        assert (cfg.default.bind_port, cfg.identity.bind_port) == (net, ident)
        on_disk = nconfig.load(state / "neutrino.conf", state_dir=state)
        assert on_disk.default.bind_port == net - 1000  # the offset is not written
        code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
        assert code == 0 and f"https://127.0.0.1:{ident}/v3" in out, out
        assert "TLS: on" in out and "answers (HTTP 401)" in out
    finally:
        assert cli.main(["down", "--purge", "--state-dir", str(state)]) == 0


def test_first_up_no_tls_writes_plain_http(tmp_path: Path, fake_server, capsys, free_port) -> None:
    """``up --no-tls``: the only way to plain HTTP; written into neutrino.conf, and ``status`` says so."""
    state = tmp_path / "plain"
    net, ident = free_port(), free_port()
    hooks = dataclasses.replace(
        fake_server["hooks"],
        initial_values=lambda: {
            **nconfig.ALL_IN_ONE,
            ("database", "connection"): "",
            ("DEFAULT", "bind_port"): str(net),
            ("identity", "bind_port"): str(ident),
        },
    )
    try:
        code, out = run(capsys, "up", "--no-agents", "--no-tls", "--state-dir", str(state), hooks=hooks)
        assert code == 0, out
        assert f"http://127.0.0.1:{net}/" in out and "TLS           off (plain HTTP)" in out
        assert not nconfig.load(state / "neutrino.conf", state_dir=state).default.use_ssl
        assert not (state / "pki").exists()  # no CA is made for plain HTTP
        code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
        assert code == 0 and "TLS: off (plain HTTP)" in out, out
    finally:
        assert cli.main(["down", "--purge", "--state-dir", str(state)]) == 0


def test_no_tls_on_a_tls_configuration_is_refused(tmp_path: Path, capsys, free_port) -> None:
    state = tmp_path / "tls"
    write_conf(state, free_port(), free_port())
    code, out = run(capsys, "up", "--no-agents", "--no-tls", "--state-dir", str(state))
    assert code == 1 and "has TLS on" in out and "use_ssl = false" in out
    assert not list((state / "run").glob("*.pid"))


def test_up_reports_a_crashing_server(state: Path, fake_server, capsys) -> None:
    hooks = fake_server["hooks"]
    fake_server["mode"] = "crash"
    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)
    assert code == 1
    assert "exited with status 7" in out and "fake server: giving up" in out
    assert not (state / "run" / "server.pid").exists()


def test_up_times_out_when_an_api_never_answers(state: Path, fake_server, capsys) -> None:
    hooks = fake_server["hooks"]
    fake_server["mode"] = "half"
    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), "--timeout", "1.5", hooks=hooks)
    assert code == 1
    assert "did not answer within 1.5 s (waiting for network)" in out
    assert "fake server listening" in out
    assert not (state / "run" / "server.pid").exists()
    assert run(capsys, "status", "--state-dir", str(state), hooks=hooks)[0] == cli.EXIT_NOT_RUNNING


def test_up_refuses_a_taken_port(state: Path, fake_server, capsys) -> None:
    hooks = fake_server["hooks"]
    cfg = nconfig.load(state / "neutrino.conf", state_dir=state)
    with socket.socket() as s:
        s.bind(("127.0.0.1", cfg.default.bind_port))
        s.listen()
        code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)
    assert code == 1 and "already in use" in out
    assert fake_server["prepared"] == []


def test_down_after_a_crash_and_status_of_a_dead_server(state: Path, fake_server, capsys) -> None:
    hooks = fake_server["hooks"]
    assert run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)[0] == 0
    rec = cli.Layout(state).pidfile("server").read()
    os.kill(rec.pid, signal.SIGKILL)
    assert process.wait_for(lambda: not rec.is_alive(), 5)
    code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
    assert code == cli.EXIT_NOT_RUNNING and "stale pidfile" in out
    # up again cleans the stale pidfile and starts anew
    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)
    assert code == 0, out
    rec2 = cli.Layout(state).pidfile("server").read()
    assert rec2.pid != rec.pid or rec2.start_time != rec.start_time
    os.kill(rec2.pid, signal.SIGKILL)
    process.wait_for(lambda: not rec2.is_alive(), 5)
    code, out = run(capsys, "down", "--state-dir", str(state), hooks=hooks)
    assert code == 0 and "was not running" in out
    assert not (state / "run" / "server.pid").exists()


def test_status_is_degraded_when_an_api_stops_answering(state: Path, fake_server, capsys) -> None:
    # A stopped (SIGSTOP) server is alive but does not answer.
    hooks = dataclasses.replace(fake_server["hooks"], probe_timeout=0.3)
    assert run(capsys, "up", "--no-agents", "--state-dir", str(state), hooks=hooks)[0] == 0
    rec = cli.Layout(state).pidfile("server").read()
    os.kill(rec.pid, signal.SIGSTOP)
    try:
        code, out = run(capsys, "status", "--state-dir", str(state), hooks=hooks)
        assert code == cli.EXIT_DEGRADED, out
        assert "no answer" in out
    finally:
        os.kill(rec.pid, signal.SIGCONT)


def test_garbled_pidfile_is_dropped(state: Path, capsys) -> None:
    pf = cli.Layout(state).pidfile("server")
    pf.path.parent.mkdir(parents=True, exist_ok=True)
    pf.path.write_text(str(os.getpid()))  # a bare pid: never trusted, never signalled
    code, out = run(capsys, "status", "--state-dir", str(state))
    assert code == cli.EXIT_NOT_RUNNING and "unreadable pidfile" in out
    code, out = run(capsys, "down", "--state-dir", str(state))
    assert code == 0 and "not a neutrino pidfile" in out
    assert not pf.path.exists()


def test_purge_refuses_foreign_directories(tmp_path: Path, capsys) -> None:
    d = tmp_path / "precious"
    d.mkdir()
    (d / "thesis.tex").write_text("x")
    code, out = run(capsys, "down", "--purge", "--state-dir", str(d))
    assert code == 1 and "refusing to purge" in out
    assert (d / "thesis.tex").exists()


def test_server_needs_a_config(tmp_path: Path, capsys) -> None:
    code, out = run(capsys, "server", "--state-dir", str(tmp_path))
    assert code == 1 and "does not exist" in out


HAVE_SERVER = importlib.util.find_spec("neutrino.server") is not None


@pytest.mark.skipif(HAVE_SERVER, reason="neutrino.server exists")
def test_up_without_a_server_module(state: Path, capsys) -> None:
    code, out = run(capsys, "up", "--no-agents", "--state-dir", str(state))
    assert code == 1 and "neutrino.server is not part of this build" in out


@pytest.mark.skipif(not HAVE_SERVER, reason="neutrino.server does not exist yet")
def test_real_server_flow(tmp_path: Path, free_port) -> None:
    """The real thing, as a user runs it: separate processes, real server."""
    state = tmp_path / "real"
    net, ident = free_port(), free_port()
    write_conf(state, net, ident)

    def neutrino(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "neutrino.cli.main", *args, "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    try:
        up = neutrino("up", "--no-agents")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"https://127.0.0.1:{net}/" in up.stdout
        st = neutrino("status")
        assert st.returncode == 0, st.stdout + st.stderr
        assert "TLS: on" in st.stdout and "answers (HTTP" in st.stdout
        assert f"export OS_CACERT={state / 'pki' / 'ca.pem'}" in (state / "admin-openrc").read_text()
    finally:
        down = neutrino("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert neutrino("status").returncode == cli.EXIT_NOT_RUNNING
    assert neutrino("down", "--purge").returncode == 0
    assert not state.exists()


def test_free_port_offsets_cover_every_port_up_moves_and_stay_below_the_ephemeral_range() -> None:
    """``neutrino.testing.ports`` checks exactly the ports ``--port-offset`` moves, and picks
    offsets that keep them out of the range the kernel gives outgoing connections."""
    from neutrino import config as nconfig
    from neutrino.cli.layout import with_port_offset
    from neutrino.testing import ports

    base = nconfig.defaults("/tmp/unused")
    moved = with_port_offset(base, 1)
    changed = {
        value for sec, opts in base.sections.items() for opt, value in opts.items() if moved.sections[sec][opt] != value
    }
    assert changed == set(ports.BASE_PORTS)
    for _ in range(20):
        off = ports.free_port_offset()
        assert max(ports.BASE_PORTS) + off < ports.ephemeral_low()


def test_status_warns_before_a_certificate_expires(tmp_path: Path, capsys, free_port) -> None:
    from neutrino.pki.ca import CertificateAuthority, ensure_node_pki, server_sans

    state = tmp_path / "warn"
    write_conf(state, free_port(), free_port())
    paths = ensure_node_pki(state, host="aio", role="all", sans=server_sans("aio"))
    code, out = run(capsys, "status", "--state-dir", str(state))
    assert code == cli.EXIT_NOT_RUNNING and "TLS: on" in out and "warning:" not in out
    ca = CertificateAuthority.load(paths.ca_dir, crl_path=paths.crl)
    ca.issue_client("aio", "all", paths.node_cert, paths.node_key, days=10)  # within [pki] expiry_warning_days
    code, out = run(capsys, "status", "--state-dir", str(state))
    assert f"warning: {paths.node_cert}: certificate CN=aio" in out and "expires in 9 days" in out, out

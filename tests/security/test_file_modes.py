"""Finding 5: secrets readable by any local user.  The state directory was 0755 and
neutrino.db / -wal 0644 (password hashes, user data, key pairs, change-log bodies);
guests/*/metadata/user-data was 0644.  Now every neutrino process runs under umask 077,
the state directory is 0700, credential files 0600, and every ``up`` repairs what an older
version (or a hand) left readable and says so.  What dnsmasq (user nobody) and the haproxy
metadata proxies (unprivileged, finding 12) must read keeps the modes they need.
"""

from __future__ import annotations

import grp
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino import config as nconfig
from neutrino.cli import main as cli
from neutrino.config_checks import validate

PRIVATE = ("neutrino.db", "admin-openrc", "demo-openrc", "agent-openrc", "clouds.yaml", "neutrino.conf")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def readable_by_others(root: Path) -> list[str]:
    """Directories and regular files under ``root`` with any group or other bit."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and st.st_mode & 0o077:
                out.append(f"{p.relative_to(root)} {stat.S_IMODE(st.st_mode):04o}")
    return out


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A distribution's usual umask (022): what the state used to be created under."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def write_conf(state: Path, network_port: int, identity_port: int) -> None:
    values = cli.initial_values()
    values.update({("DEFAULT", "bind_port"): str(network_port), ("identity", "bind_port"): str(identity_port)})
    state.mkdir(parents=True, exist_ok=True)
    (state / "neutrino.conf").write_text(nconfig.render_ini(values))


def test_prepare_makes_a_private_state_dir(tmp_path: Path, loose_umask: None) -> None:
    """The server's prepare (migrations, keys, bootstrap) under a 022 umask creates nothing
    that another local user can read."""
    from neutrino import server

    state = tmp_path / "state"
    cfg = nconfig.defaults(state)
    server.prepare(cfg)
    assert mode(state) == 0o700
    for name in PRIVATE[:-1]:
        assert mode(state / name) == 0o600, name
    assert mode(state / "fernet-keys") == 0o700 and mode(state / "fernet-keys" / "0") == 0o600
    assert readable_by_others(state) == []
    assert os.umask(0o022) == 0o022  # prepare gave the process its umask back


def test_first_up_writes_a_private_config(tmp_path: Path, loose_umask: None) -> None:
    layout = cli.Layout(tmp_path / "state")
    layout.root.mkdir()
    cli._write_initial_config(layout, None)
    assert mode(layout.conf) == 0o600  # it holds the metadata secret


def test_up_repairs_an_old_state_dir(tmp_path: Path, free_port: Any) -> None:
    """A state dir as the old code left it (0755, a 0644 database, 0644 user data) is made
    private by the next ``neutrino up``, which says what it changed; the server's own files
    (SQLite's -wal and -shm) are private too."""
    state = tmp_path / "old"
    write_conf(state, free_port(), free_port())

    def neutrino(*args: str) -> subprocess.CompletedProcess[str]:
        # A umask of 022 as a login shell has: only neutrino's own umask protects the files.
        return subprocess.run(
            [sys.executable, "-m", "neutrino.cli.main", *args, "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=90,
            preexec_fn=lambda: os.umask(0o022),
        )

    try:
        up = neutrino("up", "--no-agents")
        assert up.returncode == 0, up.stdout + up.stderr
        assert neutrino("down").returncode == 0
        # What the old code left behind.
        user_data = state / "guests" / "0123" / "metadata" / "user-data"
        user_data.parent.mkdir(parents=True)
        user_data.write_text("#!/bin/sh\necho secret\n")
        for p in (state, state / "guests", state / "guests" / "0123", user_data.parent):
            os.chmod(p, 0o755)
        for p in (state / "neutrino.db", state / "admin-openrc", user_data, state / "neutrino.conf"):
            os.chmod(p, 0o644)
        os.chmod(state / "fernet-keys", 0o755)
        assert len(readable_by_others(state)) >= 8

        up = neutrino("up", "--no-agents")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "repaired the modes of" in up.stdout
        assert f"{state / 'neutrino.db'}: mode 0644 -> 0600" in up.stdout
        assert f"{user_data}: mode 0644 -> 0600" in up.stdout
        assert mode(state) == 0o700
        assert readable_by_others(state) == []
        from neutrino.agents.auth import read_openrc
        from neutrino.cli.console import _token

        _token(read_openrc(state / "admin-openrc"))  # the server opens the database
        wal = state / "neutrino.db-wal"
        assert wal.exists() and mode(wal) == 0o600  # created by the running server
        # Nothing to repair the next time.
        again = neutrino("up", "--no-agents")
        assert again.returncode == 0 and "repaired" not in again.stdout
    finally:
        neutrino("down", "--purge")


def test_repair_keeps_sockets_and_symlinks(tmp_path: Path) -> None:
    from neutrino.cli import filemodes

    state = tmp_path / "s"
    state.mkdir(mode=0o755)
    (state / "f").write_text("x")
    os.chmod(state / "f", 0o666)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(state / "sock"))
    os.chmod(state / "sock", 0o666)
    (state / "link").symlink_to("/etc/hostname")
    fixed = filemodes.repair([state])
    assert sorted((f.path.name, f.old, f.new) for f in fixed) == [("f", 0o666, 0o600), ("s", 0o755, 0o700)]
    assert mode(state / "sock") == 0o666 and mode(Path("/etc/hostname")) & 0o004
    sock.close()


def test_repair_covers_a_key_repository_and_database_outside_the_state_dir(tmp_path: Path) -> None:
    from neutrino.cli import filemodes

    keys, db = tmp_path / "keys", tmp_path / "db" / "n.db"
    keys.mkdir(mode=0o755)
    db.parent.mkdir()
    db.write_text("")
    os.chmod(db, 0o644)
    cfg = nconfig.defaults(tmp_path / "state").with_overrides(
        {("fernet_tokens", "key_repository"): str(keys), ("database", "connection"): f"sqlite:///{db}"}
    )
    paths = filemodes.private_paths(cfg)
    assert paths[0] == tmp_path / "state" and keys in paths and db in paths
    filemodes.repair(paths)
    assert mode(keys) == 0o700 and mode(db) == 0o600


def test_guest_metadata_is_private(tmp_path: Path) -> None:
    """The compute agent keeps what the guest read at boot (user data may hold secrets) 0600."""
    from collections.abc import Sequence

    from neutrino.agents.compute import agent as compute
    from neutrino.fakes.host import FakeHost, Ns
    from neutrino.system.exec import Completed

    bodies = {"hostname": "vm1", "openssh-key": "ssh-ed25519 AAAA", "user-data": "password: hunter2"}

    class Guest(FakeHost):
        """curl in the guest's namespace: the answer by the URL's last part."""

        def run(
            self, argv: Sequence[str], *, netns: str | None = None, check: bool = True, timeout: float = 30
        ) -> Completed:
            return Completed(tuple(argv), 0, f"{bodies[argv[-1].rsplit('/', 1)[-1]]}\n200", "")

    host = Guest()
    host.ns["vm-sid-1"] = Ns()
    drv = compute.ComputeDriver("h1", host, marks=tmp_path / "state" / "instances")
    old = os.umask(0o022)
    try:
        assert drv.fetch_metadata("sid-1", attempts=1)
    finally:
        os.umask(old)
    out = tmp_path / "state" / "guests" / "sid-1" / "metadata"
    assert (out / "user-data").read_text() == "password: hunter2"
    assert mode(out) == 0o700
    assert {mode(out / n) for n in bodies} == {0o600}


def test_dnsmasq_files_stay_readable_under_the_private_umask(tmp_path: Path) -> None:
    """dnsmasq drops to user nobody and re-reads its hosts/opts files on SIGHUP: under the
    agents' umask 077 the DHCP agent still writes them 0644 in 0755 directories."""
    from neutrino.agents.dhcp import agent as dhcp

    old = os.umask(0o077)
    try:
        conf = tmp_path / "dhcp" / "net-1"
        dhcp._conf_mkdir(conf)
        dhcp.atomic_write(conf / "host", "fa:16:3e:00:00:01,host-10-0-0-3,10.0.0.3\n")
    finally:
        os.umask(old)
    assert mode(conf) == 0o755 and mode(conf / "host") == 0o644


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")
def test_metadata_socket_is_for_root_and_the_proxies_group(tmp_path: Path) -> None:
    """The metadata agent's socket (finding 12): only root and the proxies' group may connect,
    through a directory only they may enter; never world-writable (any local user could
    otherwise pose as a proxy and read every instance's metadata)."""
    from neutrino.agents.metadata.agent import bind_unix

    gid = grp.getgrnam("nogroup").gr_gid
    path = tmp_path / "run" / "metadata-x" / "metadata_proxy"
    sock = bind_unix(str(path), gid=gid, own_dir=True)
    try:
        st, dst = os.stat(path), os.stat(path.parent)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == gid
        assert stat.S_IMODE(dst.st_mode) == 0o710 and dst.st_gid == gid
    finally:
        sock.close()


def test_paths_unprivileged_daemons_need_cannot_be_in_the_state_dir(tmp_path: Path) -> None:
    """dnsmasq (nobody) and the metadata proxies could not enter a 0700 state directory."""
    cfg = nconfig.defaults(tmp_path).with_overrides(
        {
            ("DEFAULT", "dhcp_confs"): str(tmp_path / "dhcp"),
            ("metadata", "metadata_proxy_socket"): str(tmp_path / "md.sock"),
        }
    )
    errs = " ".join(validate(cfg))
    assert "[DEFAULT] dhcp_confs" in errs and "[metadata] metadata_proxy_socket" in errs
    outside = cfg.with_overrides({("DEFAULT", "dhcp_confs"): "/run/x", ("metadata", "metadata_proxy_user"): "root"})
    assert "inside the state directory" not in " ".join(validate(outside))

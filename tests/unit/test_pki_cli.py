"""``neutrino pki ...`` on a temporary state directory, through ``neutrino.cli.main.main``."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from neutrino.cli import process
from neutrino.cli.main import main
from neutrino.pki import certs
from neutrino.pki.ca import CertificateAuthority, ensure_node_pki
from neutrino.pki.paths import pki_paths


def run(capsys: pytest.CaptureFixture[str], state: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["pki", *argv, "--state-dir", str(state)])
    out, err = capsys.readouterr()
    return code, out, err


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_init_creates_the_ca_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tmp_path, "init")
    assert code == 0 and "created the CA" in out
    assert "subject: CN=Neutrino Intermediate CA, O=Neutrino" in out and "issuer:  CN=Neutrino Root CA" in out
    paths = pki_paths(tmp_path)
    root = paths.ca.read_bytes()
    assert root == (paths.ca_dir / "root.pem").read_bytes() and paths.crl.exists()
    assert _mode(paths.ca_dir / "root.key") == _mode(paths.ca_dir / "intermediate.key") == 0o600
    code, out, _ = run(capsys, tmp_path, "init")
    assert code == 0 and "exists already" in out and paths.ca.read_bytes() == root


def test_issue_bundle_then_import_on_another_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctl, node, tar = tmp_path / "ctl", tmp_path / "node", tmp_path / "compute1.tar"
    assert run(capsys, ctl, "init")[0] == 0
    code, out, _ = run(capsys, ctl, "issue", "--host", "compute1", "--role", "compute", "--bundle", str(tar))
    assert code == 0 and "subject: CN=compute1, OU=compute, O=Neutrino" in out
    assert _mode(tar) == 0o600
    code, out, _ = run(capsys, node, "import", str(tar))
    assert code == 0, out
    paths = pki_paths(node)
    for p in (paths.node_cert, paths.node_key, paths.ca, paths.crl):
        assert _mode(p) == 0o600 and f"installed {p}" in out
    assert paths.missing() == [paths.server_cert, paths.server_key]  # a compute node serves no API
    assert paths.ca.read_bytes() == pki_paths(ctl).ca.read_bytes()
    chain = certs.check_pair(paths.node_cert, paths.node_key)
    assert chain[1].subject == CertificateAuthority.load(pki_paths(ctl).ca_dir).intermediate.subject
    # The default bundle path, when --bundle is not given.
    code, out, _ = run(capsys, ctl, "issue", "--host", "net1", "--role", "network")
    assert code == 0 and (pki_paths(ctl).bundles / "net1.tar").exists()


def test_issue_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tmp_path, "issue", "--host", "c1", "--role", "compute")
    assert code == 1 and "there is no CA" in err and "neutrino pki init" in err
    run(capsys, tmp_path, "init")
    code, _, err = run(capsys, tmp_path, "issue", "--server", "--san", "ok.example", "--san", "bad_name")
    assert code == 1 and "'bad_name' is not a DNS name" in err
    assert not pki_paths(tmp_path).server_cert.exists()
    code, _, err = run(capsys, tmp_path, "issue", "--host", "c1")
    assert code == 1 and "--role" in err
    with pytest.raises(SystemExit):  # argparse: not a role
        main(["pki", "issue", "--host", "c1", "--role", "admin", "--state-dir", str(tmp_path)])


def test_issue_server_installs_the_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "init")
    code, out, _ = run(capsys, tmp_path, "issue", "--server", "--san", "ctl.example", "--san", "10.0.0.5")
    assert code == 0 and "subject alternative names: DNS:ctl.example, IP:10.0.0.5" in out
    assert "not running" in out  # no server to tell
    paths = pki_paths(tmp_path)
    leaf = certs.check_pair(paths.server_cert, paths.server_key)[0]
    assert certs.describe(leaf).subject == "CN=ctl.example, O=Neutrino" and _mode(paths.server_key) == 0o600


def test_show_prints_the_chain_and_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_node_pki(tmp_path, host="aio", role="all", sans=["aio", "127.0.0.1"])
    code, out, _ = run(capsys, tmp_path, "show")
    assert code == 0
    paths = pki_paths(tmp_path)
    for p in (paths.ca, paths.server_cert, paths.node_cert):
        assert f"{p}:" in out
    assert "subject: CN=aio, O=Neutrino" in out and "subject: CN=aio, OU=all, O=Neutrino" in out
    assert "subject alternative names: DNS:aio, IP:127.0.0.1" in out
    assert "key usage: Digital Signature, Key Encipherment" in out
    assert "extended key usage: TLS Web Client Authentication" in out
    assert "validity: " in out and "days left" in out
    assert "no certificate expires within 30 days" in out
    code, out, _ = run(capsys, tmp_path, "show", "--warn-days", "400", str(paths.node_cert))
    assert code == 0 and f"warning: {paths.node_cert}: certificate CN=aio, OU=all, O=Neutrino expires in " in out


def test_show_fails_on_an_expired_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "init")
    ca = CertificateAuthority.load(pki_paths(tmp_path).ca_dir)
    old = tmp_path / "old.pem"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    ca.issue_client("old", "compute", old, tmp_path / "old.key", days=10, not_before=start)
    code, out, _ = run(capsys, tmp_path, "show", str(old))
    assert (
        code == 1
        and "EXPIRED" in out
        and f"warning: {old}: certificate CN=old, OU=compute, O=Neutrino expired on" in out
    )
    code, out, _ = run(capsys, tmp_path, "show", str(tmp_path / "nope.pem"))
    assert code == 1 and "does not exist" in out


def test_revoke_by_serial_and_by_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "init")
    ca = CertificateAuthority.load(pki_paths(tmp_path).ca_dir)
    one = ca.new_client("c1", "compute").cert
    two = ca.new_client("c2", "compute").cert
    three = ca.new_client("c2", "compute").cert
    hexserial = f"{one.serial_number:x}"
    code, out, _ = run(capsys, tmp_path, "revoke", "0x" + hexserial)
    assert code == 0 and f"revoked serial {one.serial_number} (CN=c1, OU=compute, O=Neutrino)" in out
    code, out, _ = run(capsys, tmp_path, "revoke", "--host", "c2")
    assert code == 0 and out.count("revoked serial") == 2
    crl = x509.load_pem_x509_crl(pki_paths(tmp_path).crl.read_bytes())
    assert {r.serial_number for r in crl} == {one.serial_number, two.serial_number, three.serial_number}
    code, _, err = run(capsys, tmp_path, "revoke", "--host", "c2")
    assert code == 1 and "no valid client certificate of host c2" in err
    code, _, err = run(capsys, tmp_path, "revoke", "12345")
    assert code == 1 and "was not issued" in err


def test_rotate_keeps_names_replaces_keys_and_signals_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = ensure_node_pki(tmp_path, host="aio", role="all", sans=["aio", "localhost", "127.0.0.1"])
    old_server, old_node = certs.load_chain(paths.server_cert)[0], certs.load_chain(paths.node_cert)[0]
    old_keys = (paths.server_key.read_bytes(), paths.node_key.read_bytes())
    # A stand-in for the API server: records SIGHUP in a file.
    hup = tmp_path / "hup"
    script = (
        "import signal, time, pathlib\n"
        f"signal.signal(signal.SIGHUP, lambda *a: pathlib.Path({str(hup)!r}).write_text('hup'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        start = process.proc_start_time(proc.pid)
        assert start is not None
        rec = process.PidRecord(name="server", pid=proc.pid, start_time=start, token="t", argv=[])
        process.PidFile(tmp_path / "run" / "server.pid").write(rec)
        code, out, _ = run(capsys, tmp_path, "rotate")
        assert code == 0 and f"sent SIGHUP to the API server (pid {proc.pid})" in out
        deadline = time.monotonic() + 10
        while not hup.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hup.read_text() == "hup"
    finally:
        proc.kill()
        proc.wait()
    new_server = certs.check_pair(paths.server_cert, paths.server_key)[0]
    new_node = certs.check_pair(paths.node_cert, paths.node_key)[0]
    assert new_server.serial_number != old_server.serial_number and new_node.serial_number != old_node.serial_number
    assert (paths.server_key.read_bytes(), paths.node_key.read_bytes()) != old_keys
    assert new_server.subject == old_server.subject and new_node.subject == old_node.subject
    assert certs.describe(new_server).sans == certs.describe(old_server).sans
    assert _mode(paths.server_key) == _mode(paths.node_key) == 0o600
    assert sorted(p.name for p in paths.root.iterdir() if p.name.startswith(".")) == []


def test_rotate_without_ca_says_where_to_run_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki_paths(tmp_path).root.mkdir(parents=True)
    pki_paths(tmp_path).ca.write_text("imported")
    code, _, err = run(capsys, tmp_path, "rotate")
    assert code == 1 and "joined with a bundle" in err


def test_import_refuses_a_broken_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_text("no tar")
    code, _, err = run(capsys, tmp_path / "node", "import", str(junk))
    assert code == 1 and "not a readable bundle" in err
    assert not (tmp_path / "node" / "pki" / "node.key").exists()

"""The micro-CA (neutrino.pki.ca, certs, bundle): what it issues, where, with which modes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from neutrino.pki import bundle, certs, files
from neutrino.pki.ca import CertificateAuthority, ensure_node_pki, parse_san, server_sans
from neutrino.pki.paths import pki_paths

UTC = dt.UTC
E = TypeVar("E", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the module (key generation is cheap, but the tests read better with one CA)."""
    d = tmp_path_factory.mktemp("pki") / "ca"
    CertificateAuthority.init(d)
    return d


@pytest.fixture
def ca(ca_dir: Path, tmp_path: Path) -> CertificateAuthority:
    """The module's CA, with its CRL written into this test's directory."""
    return CertificateAuthority.load(ca_dir, crl_path=tmp_path / "crl.pem")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _ext(cert: x509.Certificate, cls: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(cls)


# ---- the CA itself ---------------------------------------------------------------


def test_init_creates_root_and_intermediate_with_ca_constraints(ca: CertificateAuthority) -> None:
    root, inter = ca.root, ca.intermediate
    assert root.subject.rfc4514_string() == "O=Neutrino,CN=Neutrino Root CA"
    assert root.issuer == root.subject
    assert inter.subject.rfc4514_string() == "O=Neutrino,CN=Neutrino Intermediate CA"
    assert inter.issuer == root.subject
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    for cert, pathlen in ((root, 1), (inter, 0)):
        bc = _ext(cert, x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == pathlen
        ku = _ext(cert, x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    years = lambda c: (c.not_valid_after_utc - c.not_valid_before_utc).days // 365  # noqa: E731 - local shorthand
    assert (years(root), years(inter)) == (10, 5)


def test_ca_files_are_private(ca_dir: Path) -> None:
    assert _mode(ca_dir) == 0o700
    for name in ("root.key", "root.pem", "intermediate.key", "intermediate.pem", "issued.json"):
        assert _mode(ca_dir / name) == 0o600, name


def test_init_is_idempotent_and_never_replaces(ca_dir: Path) -> None:
    before = {n: (ca_dir / n).read_bytes() for n in ("root.key", "root.pem", "intermediate.key", "intermediate.pem")}
    again = CertificateAuthority.init(ca_dir)
    assert again.root == x509.load_pem_x509_certificate(before["root.pem"])
    assert {n: (ca_dir / n).read_bytes() for n in before} == before


def test_incomplete_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    d = tmp_path / "ca"
    CertificateAuthority.init(d)
    (d / "intermediate.key").unlink()
    root = (d / "root.pem").read_bytes()
    with pytest.raises(certs.PkiError, match=r"incomplete \(intermediate.key missing\)"):
        CertificateAuthority.init(d)
    assert (d / "root.pem").read_bytes() == root


def test_load_without_ca_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(certs.PkiError, match="neutrino pki init"):
        CertificateAuthority.load(tmp_path / "nothing")


# ---- server and client certificates -----------------------------------------------


def test_server_certificate_names_usage_and_chain(ca: CertificateAuthority, tmp_path: Path) -> None:
    cert = ca.issue_server(["ctl.example", "localhost", "127.0.0.1", "::1"], tmp_path / "s.pem", tmp_path / "s.key")
    assert cert.subject.rfc4514_string() == "O=Neutrino,CN=ctl.example"
    assert cert.issuer == ca.intermediate.subject
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ctl.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _ext(cert, x509.BasicConstraints).value.ca is False
    # The file holds the leaf, then the intermediate; the key is 0600.
    chain = certs.check_pair(tmp_path / "s.pem", tmp_path / "s.key")
    assert chain == [cert, ca.intermediate]
    assert _mode(tmp_path / "s.key") == 0o600
    # cryptography's own path validation (web PKI rules): root trusted, intermediate untrusted.
    for name in (x509.DNSName("ctl.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        verifier = PolicyBuilder().store(Store([ca.root])).build_server_verifier(name)
        assert verifier.verify(cert, [ca.intermediate])[-1] == ca.root
    wrong = PolicyBuilder().store(Store([ca.root])).build_server_verifier(x509.DNSName("other.example"))
    with pytest.raises(VerificationError):
        wrong.verify(cert, [ca.intermediate])


def test_client_certificate_subject_names_host_and_role(ca: CertificateAuthority, tmp_path: Path) -> None:
    cert = ca.issue_client("compute1", "compute", tmp_path / "n.pem", tmp_path / "n.key")
    assert certs.name_text(cert.subject) == "CN=compute1, OU=compute, O=Neutrino"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "compute"
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    verified = PolicyBuilder().store(Store([ca.root])).build_client_verifier().verify(cert, [ca.intermediate])
    assert verified.chain[-1] == ca.root
    assert _mode(tmp_path / "n.key") == 0o600
    # A client certificate is no server certificate.
    server = PolicyBuilder().store(Store([ca.root])).build_server_verifier(x509.DNSName("compute1"))
    with pytest.raises(VerificationError):
        server.verify(cert, [ca.intermediate])


def test_issued_records_every_certificate(ca: CertificateAuthority, tmp_path: Path) -> None:
    c = ca.issue_client("net1", "network", tmp_path / "n.pem", tmp_path / "n.key", days=10)
    rec = next(r for r in ca.issued() if r.serial == c.serial_number)
    assert (rec.kind, rec.host, rec.role, rec.sans, rec.revoked) == ("client", "net1", "network", ("net1",), None)
    assert rec.not_after == c.not_valid_after_utc
    assert rec.not_after - rec.not_before <= dt.timedelta(days=10, minutes=5)
    data = json.loads((ca.directory / "issued.json").read_text())
    assert data[str(c.serial_number)]["subject"] == "CN=net1, OU=network, O=Neutrino"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("-bad.example", "not a DNS name"),
        ("a..b", "not a DNS name"),
        ("*.example", "wildcard"),
        ("host name", "not a DNS name"),
        ("x" * 64 + ".example", "not a DNS name"),
        ("IP:300.1.1.1", "not an IP address"),
        ("under_score", "not a DNS name"),
    ],
)
def test_bad_san_is_refused_with_the_reason(ca: CertificateAuthority, tmp_path: Path, bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        ca.issue_server(["ok.example", bad], tmp_path / "s.pem", tmp_path / "s.key")
    assert not (tmp_path / "s.pem").exists() and not (tmp_path / "s.key").exists()


def test_san_parsing_and_defaults() -> None:
    assert parse_san("Ctl.Example.") == x509.DNSName("ctl.example")
    assert parse_san("[fe80::1]") == x509.IPAddress(ipaddress.ip_address("fe80::1"))
    assert parse_san("DNS:a.b") == x509.DNSName("a.b")
    assert server_sans("ctl", ["0.0.0.0", "10.0.0.5", "127.0.0.1", "::"]) == [
        "ctl",
        "localhost",
        "127.0.0.1",
        "::1",
        "10.0.0.5",
    ]


def test_bad_client_host_or_role_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="role 'admin'"):
        ca.issue_client("compute1", "admin", tmp_path / "n.pem", tmp_path / "n.key")
    with pytest.raises(ValueError, match="host name"):
        ca.issue_client("compute 1", "compute", tmp_path / "n.pem", tmp_path / "n.key")


# ---- revocation ----------------------------------------------------------------------


def test_revocation_lands_in_the_crl(ca: CertificateAuthority, tmp_path: Path) -> None:
    keep = ca.issue_client("c1", "compute", tmp_path / "a.pem", tmp_path / "a.key")
    gone = ca.issue_client("c2", "compute", tmp_path / "b.pem", tmp_path / "b.key")
    rec = ca.revoke(gone.serial_number)
    assert rec.revoked is not None
    assert ca.revoke(gone.serial_number).revoked == rec.revoked  # a second time changes nothing
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert crl.issuer == ca.intermediate.subject
    assert crl.is_signature_valid(ca.intermediate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(gone.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(keep.serial_number) is None
    assert crl.next_update_utc == ca.intermediate.not_valid_after_utc
    with pytest.raises(certs.PkiError, match="was not issued"):
        ca.revoke(12345)


# ---- reading certificates ----------------------------------------------------------------


def test_expired_and_expiring_certificates_are_reported(ca: CertificateAuthority, tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    ca.issue_client(
        "old", "compute", tmp_path / "old.pem", tmp_path / "old.key", days=30, not_before=now - dt.timedelta(days=40)
    )
    ca.issue_client("soon", "compute", tmp_path / "soon.pem", tmp_path / "soon.key", days=10)
    ca.issue_client("fine", "compute", tmp_path / "fine.pem", tmp_path / "fine.key", days=100)
    paths = [tmp_path / n for n in ("old.pem", "soon.pem", "fine.pem", "missing.pem")]
    # An hour later: 9 days and 23 hours left, whatever the second the certificate was issued in.
    found = certs.expiry_problems(paths, 30, now=now + dt.timedelta(hours=1))
    assert len(found) == 2, found
    assert found[0].startswith(f"{tmp_path / 'old.pem'}: certificate CN=old, OU=compute, O=Neutrino expired on ")
    assert "(valid " in found[0] and " to " in found[0]
    assert found[1].startswith(
        f"{tmp_path / 'soon.pem'}: certificate CN=soon, OU=compute, O=Neutrino expires in 9 days"
    )
    # The intermediate in each file is reported once, and only when it expires soon itself.
    later = ca.intermediate.not_valid_after_utc - dt.timedelta(days=3)
    late = certs.expiry_problems([tmp_path / "fine.pem", tmp_path / "soon.pem"], 30, now=later)
    assert sum("Neutrino Intermediate CA" in m for m in late) == 1


def test_describe_in_the_seeds_terms(ca: CertificateAuthority, tmp_path: Path) -> None:
    cert = ca.issue_server(["web.example", "10.1.2.3"], tmp_path / "s.pem", tmp_path / "s.key")
    info = certs.describe(cert)
    assert info.subject == "CN=web.example, O=Neutrino"
    assert info.issuer == "CN=Neutrino Intermediate CA, O=Neutrino"
    assert info.sans == ("DNS:web.example", "IP:10.1.2.3")
    assert info.key_usage == ("Digital Signature", "Key Encipherment")
    assert info.extended_key_usage == ("TLS Web Server Authentication",)
    assert not info.is_ca and info.serial == cert.serial_number
    assert int(info.serial_hex.replace(":", ""), 16) == cert.serial_number
    root = certs.describe(ca.root)
    assert root.is_ca and root.self_signed and root.key_usage == ("Certificate Sign", "CRL Sign")


def test_check_pair_names_the_files_and_the_remedy(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.issue_client("a", "compute", tmp_path / "a.pem", tmp_path / "a.key")
    ca.issue_client("b", "compute", tmp_path / "b.pem", tmp_path / "b.key")
    with pytest.raises(certs.PkiError, match=r"key in .*b\.key does not belong to the certificate in .*a\.pem"):
        certs.check_pair(tmp_path / "a.pem", tmp_path / "b.key")
    with pytest.raises(certs.PkiError, match=r"key file .*nokey does not exist: .*neutrino"):
        certs.check_pair(tmp_path / "a.pem", tmp_path / "nokey")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(certs.PkiError, match=r"junk\.pem holds no valid PEM certificate"):
        certs.check_pair(tmp_path / "junk.pem", tmp_path / "a.key")
    if os.geteuid() != 0:  # root reads any file
        (tmp_path / "a.key").chmod(0)
        with pytest.raises(certs.PkiError, match="permission denied"):
            certs.check_pair(tmp_path / "a.pem", tmp_path / "a.key")


def test_write_atomic_never_leaves_a_temporary_or_an_open_mode(tmp_path: Path) -> None:
    target = tmp_path / "k.key"
    old = os.umask(0)  # the most permissive umask: the mode must still be 0600
    try:
        files.write_atomic(target, b"secret")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"secret" and _mode(target) == 0o600
    files.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


# ---- the node's files and bundles ---------------------------------------------------------


def test_ensure_node_pki_creates_what_is_missing_once(tmp_path: Path) -> None:
    sans = server_sans("aio", ["127.0.0.1"])
    paths = ensure_node_pki(tmp_path, host="aio", role="all", sans=sans)
    assert paths == pki_paths(tmp_path) and paths.missing() == []
    assert paths.ca.read_bytes() == (paths.ca_dir / "root.pem").read_bytes()
    for p in (paths.server_key, paths.node_key, paths.ca_dir / "root.key"):
        assert _mode(p) == 0o600
    server = certs.check_pair(paths.server_cert, paths.server_key)[0]
    node = certs.check_pair(paths.node_cert, paths.node_key)[0]
    assert certs.describe(server).sans == ("DNS:aio", "DNS:localhost", "IP:127.0.0.1", "IP:::1")
    assert certs.name_text(node.subject) == "CN=aio, OU=all, O=Neutrino"
    before = {p: p.read_bytes() for p in (paths.server_cert, paths.node_cert, paths.ca, paths.crl)}
    ensure_node_pki(tmp_path, host="aio", role="all", sans=sans)
    assert {p: p.read_bytes() for p in before} == before
    # A new name (a public host) re-issues the server certificate with every name.
    ensure_node_pki(tmp_path, host="aio", role="all", sans=[*sans, "ctl.example"])
    assert certs.describe(certs.load_chain(paths.server_cert)[0]).sans[-1] == "DNS:ctl.example"
    assert paths.node_cert.read_bytes() == before[paths.node_cert]


def test_ensure_node_pki_on_a_joined_node_creates_no_ca(tmp_path: Path) -> None:
    paths = pki_paths(tmp_path)
    files.write_atomic(paths.ca, b"imported")
    ensure_node_pki(tmp_path, host="c1", role="compute", sans=["c1"])
    assert not paths.ca_dir.exists() and paths.missing() == [
        paths.crl,
        paths.server_cert,
        paths.server_key,
        paths.node_cert,
        paths.node_key,
    ]


def test_bundle_round_trip_and_refusals(ca: CertificateAuthority, tmp_path: Path) -> None:
    leaf = ca.new_client("compute1", "compute")
    tar = tmp_path / "b.tar"
    bundle.make_bundle(
        tar, {"node.pem": leaf.chain_pem, "node.key": leaf.key_pem, "ca.pem": ca.root_pem_path.read_bytes()}
    )
    assert _mode(tar) == 0o600
    node = tmp_path / "node"
    written = bundle.install_bundle(node, tar)
    assert [p.name for p in written] == ["node.pem", "node.key", "ca.pem"]
    assert all(_mode(p) == 0o600 for p in written)
    certs.check_pair(node / "pki/node.pem", node / "pki/node.key")
    # Another CA's certificate with this CA's root: refused, nothing written.
    other = CertificateAuthority.init(tmp_path / "other-ca").new_client("compute1", "compute")
    bad = tmp_path / "bad.tar"
    bundle.make_bundle(
        bad, {"node.pem": other.chain_pem, "node.key": other.key_pem, "ca.pem": ca.root_pem_path.read_bytes()}
    )
    with pytest.raises(certs.PkiError, match="is not signed by"):
        bundle.install_bundle(tmp_path / "node2", bad)
    assert not (tmp_path / "node2/pki/node.pem").exists()
    # Key of another certificate: refused.
    mixed = tmp_path / "mixed.tar"
    bundle.make_bundle(
        mixed, {"node.pem": leaf.chain_pem, "node.key": other.key_pem, "ca.pem": ca.root_pem_path.read_bytes()}
    )
    with pytest.raises(certs.PkiError, match="does not belong"):
        bundle.install_bundle(tmp_path / "node3", mixed)
    # A CRL of another CA: refused.
    foreign_crl = CertificateAuthority.load(tmp_path / "other-ca").crl().public_bytes(serialization.Encoding.PEM)
    crl_tar = tmp_path / "crl.tar"
    members = {"node.pem": leaf.chain_pem, "node.key": leaf.key_pem, "ca.pem": ca.root_pem_path.read_bytes()}
    bundle.make_bundle(crl_tar, {**members, "crl.pem": foreign_crl})
    with pytest.raises(certs.PkiError, match="crl.pem is not signed by the CA"):
        bundle.install_bundle(tmp_path / "node6", crl_tar)
    bundle.make_bundle(crl_tar, {**members, "crl.pem": ca.crl().public_bytes(serialization.Encoding.PEM)})
    assert (tmp_path / "node6/pki/crl.pem") in bundle.install_bundle(tmp_path / "node6", crl_tar)
    # A tar with anything else in it: refused.
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        (tmp_path / "x").write_text("x")
        t.add(tmp_path / "x", arcname="../node.key")
    with pytest.raises(certs.PkiError, match="unexpected member"):
        bundle.install_bundle(tmp_path / "node4", evil)
    # A node with its own CA refuses another CA's bundle.
    shutil.copytree(tmp_path / "other-ca", tmp_path / "node5/pki/ca")
    with pytest.raises(certs.PkiError, match="another CA"):
        bundle.install_bundle(tmp_path / "node5", tar)


# ---- openssl agrees (a test may run openssl; the product never does) ------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_chain_and_shows_the_sans(ca: CertificateAuthority, tmp_path: Path) -> None:
    ca.issue_server(["ctl.example", "127.0.0.1"], tmp_path / "server.pem", tmp_path / "server.key")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(certs.load_chain(tmp_path / "server.pem")[0].public_bytes(serialization.Encoding.PEM))

    def openssl(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", *argv], capture_output=True, text=True, timeout=30, check=False)

    ok = openssl("verify", "-CAfile", str(ca.root_pem_path), "-untrusted", str(ca.intermediate_pem_path), str(leaf))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok.stdout + ok.stderr
    # Without the intermediate there is no path to the root.
    alone = openssl("verify", "-CAfile", str(ca.root_pem_path), str(leaf))
    assert alone.returncode != 0
    # The CRL: a revoked leaf fails openssl's CRL check.
    ca.revoke(certs.load_chain(leaf)[0].serial_number)
    crl_check = openssl(
        "verify", "-crl_check", "-CAfile", str(ca.root_pem_path), "-CRLfile", str(ca.crl_path),
        "-untrusted", str(ca.intermediate_pem_path), str(leaf),
    )  # fmt: skip
    assert crl_check.returncode != 0 and "revoked" in (crl_check.stdout + crl_check.stderr)
    text = openssl("x509", "-in", str(leaf), "-text", "-noout").stdout
    assert "DNS:ctl.example, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    assert "Issuer: CN = Neutrino Intermediate CA, O = Neutrino" in text

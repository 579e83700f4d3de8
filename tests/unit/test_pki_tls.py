"""neutrino.pki.tls: context settings, file errors, reloading, the peer's identity.

Handshakes run in memory (``ssl.MemoryBIO``): real OpenSSL verification, no sockets.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from pathlib import Path

import pytest

from neutrino.pki import tls
from tests.tls_material import Material


@pytest.fixture
def ca(tmp_path: Path) -> Material:
    return Material(tmp_path / "pki")


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str | None = "localhost"
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """(server side, client side) after a complete in-memory handshake; raises ssl.SSLError on refusal."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, obj in (("c", client), ("s", server)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client's certificate after the client finished;
            # exchange one record each way so a refusal surfaces on the client.
            client.write(b"x")
            s_in.write(c_out.read())
            server.read(1)
            server.write(b"y")
            c_in.write(s_out.read())
            client.read(1)
            return server, client
    raise AssertionError("handshake did not finish")


def _files(ca: Material, crl: bool = False) -> tuple[Path, Path, Path, Path | None]:
    cert, key, _ = ca.server()
    return cert, key, ca.ca_file, ca.write_crl() if crl else None


def test_server_context_settings(ca: Material) -> None:
    ctx = tls.server_context(*_files(ca))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert not ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF  # no CRL file: no CRL checking
    assert ctx.num_tickets == 0
    with_crl = tls.server_context(*_files(ca, crl=True))
    assert with_crl.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_client_context_settings(ca: Material) -> None:
    ctx = tls.client_context(ca.ca_file)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_missing_and_bad_files_are_named(ca: Material, tmp_path: Path) -> None:
    cert, key, cafile, _ = _files(ca)
    missing = tmp_path / "nope.pem"
    with pytest.raises(tls.TLSFileError) as err:
        tls.server_context(missing, key, cafile)
    assert err.value.path == str(missing) and "does not exist" in str(err.value)
    _, other_key, _ = ca.server("other")
    with pytest.raises(tls.TLSFileError) as err:
        tls.server_context(cert, other_key, cafile)
    assert err.value.path == str(other_key) and "does not belong" in err.value.reason
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(tls.TLSFileError, match="not a PEM certificate"):
        tls.server_context(garbage, key, cafile)
    with pytest.raises(tls.TLSFileError, match="not an unencrypted PEM private key"):
        tls.server_context(cert, garbage, cafile)
    with pytest.raises(tls.TLSFileError, match="not a PEM certificate revocation list"):
        tls.server_context(cert, key, cafile, garbage)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_is_named(ca: Material) -> None:
    cert, key, cafile, _ = _files(ca)
    key.chmod(0)
    with pytest.raises(tls.TLSFileError, match="not readable"):
        tls.server_context(cert, key, cafile)


def test_expired_certificate_names_its_dates(ca: Material) -> None:
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert, key, _ = ca.leaf("old", cn="compute1", ou="compute", client=True, start=old, days=10)
    with pytest.raises(tls.TLSFileError) as err:
        tls.client_context(ca.ca_file, cert, key)
    assert err.value.path == str(cert)
    assert "expired on 2020-01-11 00:00:00 UTC" in err.value.reason and "2020-01-01" in err.value.reason


def test_out_of_date_crl_is_refused(ca: Material) -> None:
    cert, key, _ = ca.server()
    stale = ca.write_crl("stale.pem", next_update_days=-1)
    with pytest.raises(tls.TLSFileError, match="out of date"):
        tls.server_context(cert, key, ca.ca_file, stale)


def test_handshake_without_client_certificate_has_no_peer(ca: Material) -> None:
    server, client = handshake(tls.server_context(*_files(ca, crl=True)), tls.client_context(ca.ca_file))
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    assert tls.peer_identity(server) is None


def test_peer_identity_of_a_client_certificate(ca: Material) -> None:
    node, node_key, leaf = ca.leaf("node", cn="compute1", ou="compute", client=True)
    server, _ = handshake(tls.server_context(*_files(ca, crl=True)), tls.client_context(ca.ca_file, node, node_key))
    assert tls.peer_identity(server) == tls.Peer(
        host="compute1", role="compute", serial=leaf.serial_number, subject="CN=compute1,OU=compute,O=Neutrino"
    )


def test_client_certificate_without_role_is_no_peer(ca: Material) -> None:
    node, node_key, _ = ca.leaf("norole", cn="compute1", client=True)
    server, _ = handshake(tls.server_context(*_files(ca)), tls.client_context(ca.ca_file, node, node_key))
    assert tls.peer_identity(server) is None


def test_client_certificate_from_another_ca_is_refused(ca: Material, tmp_path: Path) -> None:
    other = Material(tmp_path / "other")
    node, node_key, _ = other.leaf("node", cn="compute1", ou="compute", client=True)
    with pytest.raises(ssl.SSLError):
        handshake(tls.server_context(*_files(ca)), tls.client_context(ca.ca_file, node, node_key))


def test_revoked_client_certificate_is_refused(ca: Material) -> None:
    node, node_key, leaf = ca.leaf("node", cn="compute1", ou="compute", client=True)
    ca.revoked.append(leaf.serial_number)
    with pytest.raises(ssl.SSLError):
        handshake(tls.server_context(*_files(ca, crl=True)), tls.client_context(ca.ca_file, node, node_key))


def test_server_certificate_is_not_a_client_certificate(ca: Material) -> None:
    """A server leaf (EKU serverAuth only) presented as a client certificate fails verification."""
    cert, key, _ = ca.server("stolen")
    with pytest.raises(ssl.SSLError):
        handshake(tls.server_context(*_files(ca)), tls.client_context(ca.ca_file, cert, key))


def test_wrong_hostname_fails_verification(ca: Material) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(tls.server_context(*_files(ca)), tls.client_context(ca.ca_file), server_hostname="evil.example")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(ca: Material) -> None:
    def tls11(ctx: ssl.SSLContext) -> ssl.SSLContext:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.1 above level 0
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        return ctx

    def old_client() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca.ca_file)
        return tls11(ctx)

    # Control: a server that allows it does speak TLS 1.1 with this client.
    permissive = tls11(tls.server_context(*_files(ca)))
    _, client = handshake(permissive, old_client())
    assert client.version() == "TLSv1.1"
    with pytest.raises(ssl.SSLError):
        handshake(tls.server_context(*_files(ca)), old_client())


def _served_serial(client: ssl.SSLObject) -> int:
    return int(client.getpeercert()["serialNumber"], 16)


def test_reload_serves_the_new_certificate_for_new_handshakes(ca: Material) -> None:
    cert, key, first = ca.server()
    reloading = tls.ReloadingServerContext(cert, key, ca.ca_file, ca.directory / "crl.pem")
    _, before = handshake(reloading.base, tls.client_context(ca.ca_file))
    assert _served_serial(before) == first.serial_number
    assert not reloading.maybe_reload()  # nothing changed
    _, _, second = ca.server()  # rewrites server.pem / server.key
    assert reloading.maybe_reload()
    for name in ("localhost", None):  # with and without SNI (an IP address sends none)
        client_ctx = tls.client_context(ca.ca_file)
        client_ctx.check_hostname = name is not None
        _, after = handshake(reloading.base, client_ctx, server_hostname=name)
        assert _served_serial(after) == second.serial_number


def test_reload_keeps_the_old_context_on_a_bad_file(ca: Material, caplog: pytest.LogCaptureFixture) -> None:
    cert, key, first = ca.server()
    reloading = tls.ReloadingServerContext(cert, key, ca.ca_file)
    kept = reloading.current
    _, other_key, _ = ca.server("other")
    key.write_bytes(other_key.read_bytes())  # a key that does not match the certificate
    with caplog.at_level(logging.ERROR, logger="neutrino.pki.tls"):
        assert not reloading.reload()
    assert reloading.current is kept
    assert str(key) in caplog.text and "still serving the previous certificate" in caplog.text
    _, client = handshake(reloading.base, tls.client_context(ca.ca_file))
    assert _served_serial(client) == first.serial_number


def test_reload_picks_up_a_new_crl(ca: Material) -> None:
    cert, key, _ = ca.server()
    node, node_key, leaf = ca.leaf("node", cn="compute1", ou="compute", client=True)
    crl = ca.write_crl()
    reloading = tls.ReloadingServerContext(cert, key, ca.ca_file, crl)
    server, _ = handshake(reloading.base, tls.client_context(ca.ca_file, node, node_key))
    peer = tls.peer_identity(server)
    assert peer is not None and not reloading.is_revoked(peer)
    ca.revoked.append(leaf.serial_number)
    ca.write_crl()
    assert reloading.reload()
    assert reloading.is_revoked(peer)  # a kept-alive connection's requests are refused from now on
    with pytest.raises(ssl.SSLError):  # and a new handshake is refused
        handshake(reloading.base, tls.client_context(ca.ca_file, node, node_key))


def test_reloading_context_refuses_to_start_without_files(tmp_path: Path) -> None:
    with pytest.raises(tls.TLSFileError, match="does not exist"):
        tls.ReloadingServerContext(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")

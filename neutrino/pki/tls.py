"""TLS contexts for the servers and the clients, built on the files of our CA.

Server side
    ``server_context(cert, key, ca, crl)``: TLS 1.2 or later, the server's
    certificate chain (leaf + intermediate), and client certificates
    *optional*: a client that presents one (an agent) must chain to ``ca`` and,
    when a CRL file is present, must not be revoked (``VERIFY_CRL_CHECK_LEAF``)
    else the handshake fails with a TLS alert; a client that presents none (the
    ``openstack`` CLI) is served, and the API decides what it may do.

    ``ReloadingServerContext``: the one context handed to every listener
    (``base``).  Its ``sni_callback`` runs for every new handshake (with or
    without SNI: checked on Python 3.11 / OpenSSL 3.0, the callback gets
    ``server_name=None`` when the client sends none, e.g. connecting to
    127.0.0.1) and swaps in the *current* context, so ``reload()`` replaces the
    certificate, key and CRL for new handshakes without closing the listening
    socket or any open connection.  A bad new file (missing, unreadable, not
    PEM, key not matching, expired) keeps the current context and is logged
    with the file's path and why.

Client side
    ``client_context(ca, cert, key)``: verifies the server against ``ca``
    (hostname included) and presents a client certificate when given one.

The peer's identity (agreed key between the HTTP layer and the APIs)
    For a connection whose client presented a certificate that verified, the
    HTTP protocol (``neutrino.request_limits``) puts a ``Peer`` (host = the
    subject's CN, role = its OU, serial, subject) into every request's ASGI
    scope under ``PEER_SCOPE_KEY`` (``"neutrino.peer"``).  The key is absent
    when there is no verified client certificate (plain HTTP, or no
    certificate presented).  A request on a kept-alive connection whose
    certificate has since been revoked (its serial is in the reloaded CRL) is
    refused 403 by the HTTP layer before any app sees it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

LOG = logging.getLogger(__name__)

#: The ASGI scope key under which a verified client certificate's ``Peer`` is found.
PEER_SCOPE_KEY = "neutrino.peer"
#: The lowest protocol version either side speaks.
MIN_VERSION = ssl.TLSVersion.TLSv1_2

PathLike = str | os.PathLike[str]


class TLSFileError(Exception):
    """A certificate, key, CA or CRL file that cannot be used: ``path`` and ``reason``."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Peer:
    """The identity a verified client certificate states: ``CN=<host>, OU=<role>``."""

    host: str
    role: str
    serial: int
    subject: str


# --- reading and checking the files -------------------------------------------------------------------
def _read(path: PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TLSFileError(path, f"the {what} file does not exist") from None
    except PermissionError:
        raise TLSFileError(path, f"the {what} file is not readable by this user (uid {os.getuid()})") from None
    except OSError as exc:
        raise TLSFileError(path, f"the {what} file cannot be read: {exc.strerror}") from None


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_validity(path: PathLike, cert: x509.Certificate, now: dt.datetime) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > end:
        raise TLSFileError(path, f"the certificate expired on {_when(end)} (valid from {_when(start)})")
    if now < start:
        raise TLSFileError(path, f"the certificate is not valid before {_when(start)} (until {_when(end)})")


def _check_chain_file(path: PathLike, now: dt.datetime) -> None:
    """``path`` holds PEM certificates, the first (the leaf) valid at ``now``."""
    try:
        certs = x509.load_pem_x509_certificates(_read(path, "certificate"))
    except ValueError:
        raise TLSFileError(path, "not a PEM certificate (chain)") from None
    _check_validity(path, certs[0], now)


def _check_key_file(path: PathLike) -> None:
    try:
        serialization.load_pem_private_key(_read(path, "key"), password=None)
    except (ValueError, TypeError):
        raise TLSFileError(path, "not an unencrypted PEM private key") from None


def read_revoked(crl_file: PathLike | None, now: dt.datetime | None = None) -> frozenset[int] | None:
    """The serials a CRL file revokes; None when there is no CRL file (no CRL checking).

    Raises ``TLSFileError`` when the file exists but is not a PEM CRL or is
    past its next update (OpenSSL would then refuse every client certificate).
    """
    if crl_file is None or not os.path.exists(crl_file):
        return None
    try:
        crl = x509.load_pem_x509_crl(_read(crl_file, "CRL"))
    except ValueError:
        raise TLSFileError(crl_file, "not a PEM certificate revocation list") from None
    next_update = crl.next_update_utc
    if next_update is not None and (now or dt.datetime.now(dt.UTC)) > next_update:
        raise TLSFileError(crl_file, f"the CRL is out of date (next update was due {_when(next_update)})")
    return frozenset(r.serial_number for r in crl)


# --- contexts --------------------------------------------------------------------------------------------
def server_context(
    cert_file: PathLike, key_file: PathLike, ca_file: PathLike, crl_file: PathLike | None = None
) -> ssl.SSLContext:
    """A server context (see the module docstring).  Raises ``TLSFileError`` naming the bad file.

    ``crl_file`` that does not exist: client certificates are not checked for
    revocation.  ``ca_file``: the CA client certificates must chain to.
    """
    now = dt.datetime.now(dt.UTC)
    _check_chain_file(cert_file, now)
    _check_key_file(key_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    # No TLS 1.3 session tickets: a resumed session skips the certificate checks, and a
    # revocation must hold for every new connection.  (Python's clients do not resume anyway.)
    ctx.num_tickets = 0
    try:
        ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    except ssl.SSLError as exc:
        raise TLSFileError(key_file, f"the key does not belong to the certificate {cert_file} ({exc.reason})") from None
    _load_verify(ctx, ca_file, "CA")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    if read_revoked(crl_file, now) is not None:
        assert crl_file is not None  # read_revoked returns None for no file
        _load_verify(ctx, crl_file, "CRL")
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def _load_verify(ctx: ssl.SSLContext, path: PathLike, what: str) -> None:
    _read(path, what)  # a clear message for a missing or unreadable file
    try:
        ctx.load_verify_locations(cafile=os.fspath(path))
    except ssl.SSLError as exc:
        raise TLSFileError(path, f"the {what} file is not PEM ({exc.reason})") from None


def client_context(
    ca_file: PathLike, cert_file: PathLike | None = None, key_file: PathLike | None = None
) -> ssl.SSLContext:
    """A client context: TLS 1.2+, the server verified against ``ca_file`` (hostname included),
    and ``cert_file``/``key_file`` presented when the server asks (agents).

    Pass it as ``httpx.Client(verify=ctx)`` or ``urllib.request.urlopen(..., context=ctx)``.
    Raises ``TLSFileError`` naming a bad file (an expired client certificate included:
    its dates are in the message).
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = MIN_VERSION
    _load_verify(ctx, ca_file, "CA")
    if cert_file is not None:
        _check_chain_file(cert_file, dt.datetime.now(dt.UTC))
        key = key_file if key_file is not None else cert_file
        _check_key_file(key)
        try:
            ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key))
        except ssl.SSLError as exc:
            raise TLSFileError(key, f"the key does not belong to the certificate {cert_file} ({exc.reason})") from None
    return ctx


def verify_arg(ca_file: PathLike | None) -> ssl.SSLContext | bool:
    """What ``httpx``'s ``verify=`` takes for a client of our APIs: a context trusting
    ``ca_file`` (``OS_CACERT``), or True (the system's CAs) when there is none."""
    return client_context(ca_file) if ca_file else True


# --- the peer's identity -----------------------------------------------------------------------------------
def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Peer | None:
    """The ``Peer`` of a connection whose client certificate verified; None otherwise.

    ``getpeercert()`` is empty or None unless the chain verified (CERT_OPTIONAL
    or CERT_REQUIRED), so an unverified certificate never yields a Peer.  A
    certificate without a CN or an OU (not one of our node certificates) yields None.
    """
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    parts: list[tuple[str, str]] = []
    for rdn in cert.get("subject", ()):  # ((("commonName", "compute1"),), (("organizationalUnitName", ...),), ...)
        for attr in rdn:
            if isinstance(attr, tuple) and len(attr) == 2:
                parts.append((str(attr[0]), str(attr[1])))
    fields = dict(parts)
    host, role = fields.get("commonName"), fields.get("organizationalUnitName")
    serial = cert.get("serialNumber")
    if not host or not role or not isinstance(serial, str):
        return None
    short = {"commonName": "CN", "organizationalUnitName": "OU", "organizationName": "O"}
    subject = ",".join(f"{short.get(k, k)}={v}" for k, v in parts)
    return Peer(host=host, role=role, serial=int(serial, 16), subject=subject)


# --- reloading ----------------------------------------------------------------------------------------------
class ReloadingServerContext:
    """A server context whose certificate, key and CRL can be replaced while serving.

    Give ``base`` to every listener.  Each new handshake runs ``base``'s
    ``sni_callback``, which switches that connection to the current context;
    connections already open keep theirs.  ``reload()`` rebuilds the current
    context from the files (a bad file keeps the old one, logged);
    ``maybe_reload()`` does so when a file's mtime changed (call it
    periodically).  Raises ``TLSFileError`` at construction if the files are bad:
    a server must not start without them.
    """

    def __init__(
        self, cert_file: PathLike, key_file: PathLike, ca_file: PathLike, crl_file: PathLike | None = None
    ) -> None:
        self.files: tuple[PathLike, PathLike, PathLike, PathLike | None] = (cert_file, key_file, ca_file, crl_file)
        self._mtimes = self._stat()
        self.base = server_context(*self.files)
        self.current = self.base
        self.revoked: frozenset[int] = read_revoked(crl_file) or frozenset()
        self.base.sni_callback = self._select

    def _select(self, ssl_object: ssl.SSLObject, server_name: str | None, base: ssl.SSLContext) -> None:
        if self.current is not base:
            ssl_object.context = self.current

    def _stat(self) -> tuple[int | None, ...]:
        out: list[int | None] = []
        for path in self.files:
            try:
                out.append(os.stat(path).st_mtime_ns if path is not None else None)
            except OSError:
                out.append(None)
        return tuple(out)

    def reload(self) -> bool:
        """Rebuild the current context from the files; True when it was replaced.

        On a bad file the current context stays and the error (file and why) is logged.
        """
        self._mtimes = self._stat()  # before reading: a write after this is seen by the next check
        try:
            new = server_context(*self.files)
            revoked = read_revoked(self.files[3]) or frozenset()
        except TLSFileError as exc:
            LOG.error("TLS files not reloaded, still serving the previous certificate: %s", exc)
            return False
        # A handshake starts with base's verification settings (switching the context later
        # changes the certificate and the trust store, not the flags): keep them in step.
        self.base.verify_flags = new.verify_flags
        self.current, self.revoked = new, revoked
        LOG.info("TLS certificate, key and CRL reloaded from %s", self.files[0])
        return True

    def maybe_reload(self) -> bool:
        """``reload()`` if any file's mtime changed since the last (re)load; True when replaced."""
        if self._stat() == self._mtimes:
            return False
        return self.reload()

    def is_revoked(self, peer: Peer) -> bool:
        """True when ``peer``'s certificate is in the CRL loaded last."""
        return peer.serial in self.revoked

    def peer(self, ssl_object: Any) -> Peer | None:
        """``peer_identity`` of a transport's ``ssl_object``."""
        return peer_identity(ssl_object)


__all__ = [
    "MIN_VERSION",
    "PEER_SCOPE_KEY",
    "Peer",
    "ReloadingServerContext",
    "TLSFileError",
    "client_context",
    "peer_identity",
    "read_revoked",
    "server_context",
    "verify_arg",
]

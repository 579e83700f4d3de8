"""The micro-CA: a root CA, an intermediate CA that signs everything else, and its records.

The CA's directory (``STATE/pki/ca``) holds::

    root.key, root.pem                  the root (self-signed; keyCertSign+cRLSign, CA)
    intermediate.key, intermediate.pem  signed by the root (CA, path length 0)
    issued.json                         serial -> what was issued to whom, and revocations
    lock                                serializes issuing and revoking

Leaves are signed by the intermediate: server certificates (``CN=<first SAN>, O=Neutrino``,
digitalSignature+keyEncipherment, serverAuth, the SANs given) and client certificates
(``CN=<host>, OU=<role>, O=Neutrino``, digitalSignature, clientAuth).  A leaf file holds the
leaf and then the intermediate (the chain a peer presents); clients trust the root alone
(``STATE/pki/ca.pem``).  Keys are EC P-256, written 0600 atomically (``files``).

The CRL (``STATE/pki/crl.pem`` unless told otherwise) is signed by the intermediate and
rewritten on every revocation; its next update is the intermediate's expiry, because a
local CRL that lapses would lock every agent out, and its freshness comes from being
rewritten (and reloaded by the server) whenever something is revoked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from neutrino.pki import files
from neutrino.pki.certs import PkiError, describe, load_chain, load_key, utcnow
from neutrino.pki.paths import PkiPaths, pki_paths

ORGANIZATION = "Neutrino"
ROOT_CN = "Neutrino Root CA"
INTERMEDIATE_CN = "Neutrino Intermediate CA"
#: Node roles a client certificate may name (``[DEFAULT] roles``).
ROLES = ("all", "controller", "network", "compute")
#: A leaf's validity starts this much before it is issued (clocks of other nodes may lag).
BACKDATE = dt.timedelta(minutes=5)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def dns_name(text: str, what: str = "DNS name") -> str:
    """``text`` as a lower-case DNS name (trailing dot dropped); ValueError saying why it is not one.

    Letters, digits and hyphens in labels of 1-63 characters, at most 253 in all; no
    wildcards (each node gets its own names) and no underscores."""
    name = text.strip().lower().removesuffix(".")
    if not name:
        raise ValueError(f"{what} {text!r} is empty")
    if len(name) > 253:
        raise ValueError(f"{what} {text!r} is longer than 253 characters")
    if "*" in name:
        raise ValueError(f"{what} {text!r}: wildcard names are not issued (name every host)")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(
                f"{what} {text!r} is not a DNS name: labels are 1-63 letters, digits or hyphens "
                "(not at either end), separated by dots"
            )
    return name


def parse_san(text: str) -> x509.GeneralName:
    """One subject alternative name: an IPv4/IPv6 address or a DNS name (``DNS:``/``IP:``
    prefixes accepted).  ValueError with the reason for anything else."""
    raw = text.strip()
    kind, sep, rest = raw.partition(":")
    if sep and kind.upper() in ("DNS", "IP"):
        raw = rest.strip()
        if kind.upper() == "IP":
            try:
                return x509.IPAddress(ipaddress.ip_address(raw))
            except ValueError:
                raise ValueError(f"subject alternative name {text!r} is not an IP address") from None
        return x509.DNSName(dns_name(raw, "subject alternative name"))
    try:
        addr = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        return x509.DNSName(dns_name(raw, "subject alternative name"))
    return x509.IPAddress(addr)


def parse_sans(sans: Iterable[str]) -> list[x509.GeneralName]:
    """Every name of ``sans`` parsed (``parse_san``), duplicates dropped, order kept; at least one."""
    out: list[x509.GeneralName] = []
    for text in sans:
        gn = parse_san(text)
        if gn not in out:
            out.append(gn)
    if not out:
        raise ValueError("a server certificate needs at least one subject alternative name")
    return out


def san_text(gn: x509.GeneralName) -> str:
    return str(gn.value)


def server_sans(hostname: str, hosts: Iterable[str] = ()) -> list[str]:
    """The names a node's server certificate carries: its host name, ``localhost``,
    127.0.0.1, ::1 and ``hosts`` (bind and public hosts, extra names), without the
    wildcard bind addresses (0.0.0.0, ::) and without duplicates."""
    out: list[str] = []
    for name in [hostname, "localhost", "127.0.0.1", "::1", *hosts]:
        name = name.strip().strip("[]")
        if name and name not in ("0.0.0.0", "::") and name not in out:
            out.append(name)
    return out


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


def _from_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


@dataclass(frozen=True)
class IssuedRecord:
    """One certificate the CA issued (``issued.json``)."""

    serial: int
    subject: str
    kind: str  # "server" | "client"
    host: str
    role: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    revoked: dt.datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "host": self.host,
            "role": self.role,
            "sans": list(self.sans),
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "revoked": _iso(self.revoked) if self.revoked else None,
        }

    @classmethod
    def from_json(cls, serial: str, data: dict[str, object]) -> IssuedRecord:
        revoked = data.get("revoked")
        sans = data.get("sans")
        return cls(
            serial=int(serial),
            subject=str(data["subject"]),
            kind=str(data["kind"]),
            host=str(data.get("host", "")),
            role=str(data.get("role", "")),
            sans=tuple(str(s) for s in sans) if isinstance(sans, list) else (),
            not_before=_from_iso(str(data["not_before"])),
            not_after=_from_iso(str(data["not_after"])),
            revoked=_from_iso(str(revoked)) if revoked else None,
        )


@dataclass(frozen=True)
class Leaf:
    """A freshly issued leaf: its certificate, its key (PEM) and the file content of its chain."""

    cert: x509.Certificate
    key_pem: bytes
    chain_pem: bytes  # leaf + intermediate


# --------------------------------------------------------------------------
# Building certificates
# --------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, ou: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION))
    return x509.Name(attrs)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage(server: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=server,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: int,
    path_length: int | None,
    now: dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


# --------------------------------------------------------------------------
# The CA
# --------------------------------------------------------------------------

_CA_FILES = ("root.key", "root.pem", "intermediate.key", "intermediate.pem")


class CertificateAuthority:
    """A loaded CA (``init`` or ``load``): issues leaves, revokes them, writes the CRL."""

    def __init__(
        self,
        directory: Path,
        root: x509.Certificate,
        intermediate: x509.Certificate,
        intermediate_key: ec.EllipticCurvePrivateKey,
        crl_path: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.root = root
        self.intermediate = intermediate
        self._key = intermediate_key
        #: Where ``revoke`` rewrites the CRL (default: next to the CA directory, ``STATE/pki/crl.pem``).
        self.crl_path = Path(crl_path) if crl_path else self.directory.parent / "crl.pem"

    # ---- creation and loading ------------------------------------------------

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        days_root: int = 3650,
        days_intermediate: int = 1825,
        crl_path: Path | None = None,
        now: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """Create the CA in ``directory``, or load the one already there (never replaced).

        The new CA is built in a temporary sibling directory and renamed into place, so a
        crash leaves either no CA or a complete one; the CRL (empty) is written too."""
        directory = Path(directory)
        if directory.exists():
            return cls.load(directory, crl_path=crl_path)
        if days_intermediate > days_root:
            raise ValueError("the intermediate CA cannot outlive the root CA (days_intermediate > days_root)")
        now = now or utcnow()
        files.ensure_dir(directory.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            root_key, inter_key = _new_key(), _new_key()
            root = _ca_cert(_name(ROOT_CN), root_key, None, root_key, days_root, 1, now)
            inter = _ca_cert(_name(INTERMEDIATE_CN), inter_key, root, root_key, days_intermediate, 0, now)
            files.write_atomic(tmp / "root.key", _key_pem(root_key))
            files.write_atomic(tmp / "root.pem", _pem(root))
            files.write_atomic(tmp / "intermediate.key", _key_pem(inter_key))
            files.write_atomic(tmp / "intermediate.pem", _pem(inter))
            files.write_atomic(tmp / "issued.json", b"{}\n")
            try:
                os.rename(tmp, directory)
            except OSError:
                if directory.exists():  # another init won the race: use its CA
                    return cls.load(directory, crl_path=crl_path)
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        ca = cls(directory, root, inter, inter_key, crl_path)
        ca.write_crl(ca.crl_path, now=now)
        return ca

    @classmethod
    def load(cls, directory: Path, *, crl_path: Path | None = None) -> CertificateAuthority:
        """The CA in ``directory``; PkiError naming what is missing or wrong."""
        directory = Path(directory)
        if not directory.is_dir():
            raise PkiError(f"there is no CA in {directory}: create it with `neutrino pki init` (or `neutrino up`)")
        missing = [n for n in _CA_FILES if not (directory / n).exists()]
        if missing:
            raise PkiError(
                f"the CA in {directory} is incomplete ({', '.join(missing)} missing): restore the files from "
                "a backup, or move the directory away to create a new CA (every certificate must then be "
                "issued again)"
            )
        root = load_chain(directory / "root.pem")[0]
        inter = load_chain(directory / "intermediate.pem")[0]
        key = load_key(directory / "intermediate.key")
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != inter.public_key():
            raise PkiError(f"{directory / 'intermediate.key'} is not the key of {directory / 'intermediate.pem'}")
        return cls(directory, root, inter, key, crl_path)

    # ---- paths -------------------------------------------------------------------

    @property
    def root_pem_path(self) -> Path:
        return self.directory / "root.pem"

    @property
    def intermediate_pem_path(self) -> Path:
        return self.directory / "intermediate.pem"

    @property
    def _records_path(self) -> Path:
        return self.directory / "issued.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One issuer or revoker at a time (``issued.json`` is read, changed and rewritten)."""
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, files.PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---- records -----------------------------------------------------------------

    def _read_records(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._records_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self._records_path} cannot be read ({exc}): restore it from a backup") from None
        if not isinstance(data, dict):
            raise PkiError(f"{self._records_path} is not a JSON object: restore it from a backup")
        return data

    def _write_records(self, data: dict[str, dict[str, object]]) -> None:
        files.write_atomic(self._records_path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    def issued(self) -> list[IssuedRecord]:
        """Every certificate this CA issued, oldest first."""
        recs = [IssuedRecord.from_json(s, d) for s, d in self._read_records().items()]
        return sorted(recs, key=lambda r: (r.not_before, r.serial))

    def record(self, serial: int) -> IssuedRecord | None:
        data = self._read_records().get(str(serial))
        return IssuedRecord.from_json(str(serial), data) if data else None

    # ---- issuing -----------------------------------------------------------------

    def _leaf(
        self,
        subject: x509.Name,
        sans: Sequence[x509.GeneralName],
        server: bool,
        days: int,
        not_before: dt.datetime | None,
    ) -> tuple[x509.Certificate, bytes]:
        if days < 1:
            raise ValueError(f"days must be at least 1 (got {days})")
        if not_before is None:
            now = utcnow()
            start, end = now - BACKDATE, now + dt.timedelta(days=days)
        else:
            start, end = not_before, not_before + dt.timedelta(days=days)
        # A leaf never outlives its issuer (a verifier would refuse the chain from then on).
        end = min(end, self.intermediate.not_valid_after_utc)
        key = _new_key()
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_usage(server), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert, _key_pem(key)

    def _remember(self, cert: x509.Certificate, kind: str, host: str, role: str) -> None:
        info = describe(cert)
        rec = IssuedRecord(
            serial=cert.serial_number,
            subject=info.subject,
            kind=kind,
            host=host,
            role=role,
            sans=tuple(s.split(":", 1)[1] for s in info.sans),
            not_before=info.not_before,
            not_after=info.not_after,
        )
        with self._locked():
            data = self._read_records()
            data[str(rec.serial)] = rec.to_json()
            self._write_records(data)

    def _finish(self, cert: x509.Certificate, key_pem: bytes) -> Leaf:
        return Leaf(cert, key_pem, _pem(cert) + _pem(self.intermediate))

    def new_server(self, sans: Sequence[str], *, days: int = 365, not_before: dt.datetime | None = None) -> Leaf:
        """A new server certificate (recorded, not written): ``CN=<first SAN>, O=Neutrino``,
        serverAuth, the validated ``sans`` (DNS names and IP addresses; ValueError naming a bad one)."""
        names = parse_sans(sans)
        cert, key_pem = self._leaf(_name(san_text(names[0])), names, True, days, not_before)
        self._remember(cert, "server", san_text(names[0]), "")
        return self._finish(cert, key_pem)

    def new_client(self, host: str, role: str, *, days: int = 365, not_before: dt.datetime | None = None) -> Leaf:
        """A new client certificate (recorded, not written): ``CN=<host>, OU=<role>, O=Neutrino``,
        clientAuth, SAN ``DNS:<host>``."""
        host = dns_name(host, "host name")
        role = _role(role)
        cert, key_pem = self._leaf(_name(host, role), [x509.DNSName(host)], False, days, not_before)
        self._remember(cert, "client", host, role)
        return self._finish(cert, key_pem)

    def issue_server(
        self,
        sans: Sequence[str],
        cert_path: Path,
        key_path: Path,
        *,
        days: int = 365,
        not_before: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a server certificate (``new_server``) and write it (with the intermediate) and its key (0600)."""
        leaf = self.new_server(sans, days=days, not_before=not_before)
        install_pair(leaf, Path(cert_path), Path(key_path))
        return leaf.cert

    def issue_client(
        self,
        host: str,
        role: str,
        cert_path: Path,
        key_path: Path,
        *,
        days: int = 365,
        not_before: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a client certificate (``new_client``) and write it (with the intermediate) and its key (0600)."""
        leaf = self.new_client(host, role, days=days, not_before=not_before)
        install_pair(leaf, Path(cert_path), Path(key_path))
        return leaf.cert

    # ---- revocation --------------------------------------------------------------

    def revoke(self, serial: int, *, now: dt.datetime | None = None) -> IssuedRecord:
        """Mark ``serial`` revoked (a second time changes nothing) and rewrite the CRL.

        PkiError if this CA did not issue ``serial``."""
        now = now or utcnow()
        with self._locked():
            data = self._read_records()
            if str(serial) not in data:
                raise PkiError(
                    f"serial {serial} ({serial:#x}) was not issued by the CA in {self.directory} "
                    "(`neutrino pki show` lists the serials)"
                )
            rec = IssuedRecord.from_json(str(serial), data[str(serial)])
            if rec.revoked is None:
                rec = dataclasses.replace(rec, revoked=now)
                data[str(serial)] = rec.to_json()
                self._write_records(data)
        self.write_crl(self.crl_path, now=now)
        return rec

    def crl(self, *, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """The CRL of every revoked serial, signed by the intermediate."""
        now = now or utcnow()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.intermediate.subject)
            .last_update(now - BACKDATE)
            .next_update(self.intermediate.not_valid_after_utc)
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        for rec in self.issued():
            if rec.revoked is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(rec.serial).revocation_date(rec.revoked).build()
                )
        return builder.sign(self._key, hashes.SHA256())

    def write_crl(self, path: Path, *, now: dt.datetime | None = None) -> None:
        """Write the CRL (PEM) to ``path`` atomically."""
        files.write_atomic(Path(path), self.crl(now=now).public_bytes(serialization.Encoding.PEM))

    def revoked_serials(self) -> set[int]:
        return {r.serial for r in self.issued() if r.revoked is not None}


def install_pair(leaf: Leaf, cert_path: Path, key_path: Path) -> None:
    """Write ``leaf``'s chain and key (both 0600), each atomically, the key first."""
    files.replace_together([(key_path, leaf.key_pem, files.PRIVATE), (cert_path, leaf.chain_pem, files.PRIVATE)])


# --------------------------------------------------------------------------
# A node's files (``neutrino up``)
# --------------------------------------------------------------------------


def _names_of(cert_path: Path) -> list[x509.GeneralName]:
    """The subject alternative names of ``cert_path``'s leaf ([] when it cannot be read)."""
    try:
        leaf = load_chain(cert_path)[0]
        ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (PkiError, x509.ExtensionNotFound):
        return []
    return list(ext)


def ensure_node_pki(state_dir: Path, *, host: str, role: str, sans: Sequence[str]) -> PkiPaths:
    """Make sure ``state_dir`` has its TLS files; create only what is missing.  Idempotent.

    On a node with a CA (or none yet: the first ``up`` of an all-in-one or a controller):
    creates the CA if missing, ``ca.pem`` (the root), ``crl.pem``, a server certificate for
    ``sans`` (re-issued with the union of its names and ``sans`` when it lacks one of them)
    and this node's client certificate for ``host``/``role``.  On a node that joined with a
    bundle (``ca.pem`` present, no CA directory) nothing is created: the caller checks
    ``PkiPaths.missing()``.  ValueError for a bad host, role or SAN."""
    paths = pki_paths(state_dir)
    wanted = parse_sans(sans)
    host = dns_name(host, "host name")
    role = _role(role)
    if paths.ca.exists() and not paths.ca_dir.exists():
        return paths
    files.ensure_dir(paths.root)
    ca = CertificateAuthority.init(paths.ca_dir, crl_path=paths.crl)
    root_pem = ca.root_pem_path.read_bytes()
    if not paths.ca.exists() or paths.ca.read_bytes() != root_pem:
        files.write_atomic(paths.ca, root_pem)
    if not paths.crl.exists():
        ca.write_crl(paths.crl)
    have = _names_of(paths.server_cert) if paths.server_key.exists() else []
    if not have or any(gn not in have for gn in wanted):
        names = have + [gn for gn in wanted if gn not in have]
        ca.issue_server([san_text(gn) for gn in names], paths.server_cert, paths.server_key)
    if not (paths.node_cert.exists() and paths.node_key.exists()):
        ca.issue_client(host, role, paths.node_cert, paths.node_key)
    return paths

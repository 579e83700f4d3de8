"""Reading and describing certificates, in the terms ``openssl x509 -text`` uses.

``describe`` turns a certificate into a ``CertInfo`` (subject, issuer, subject alternative
names, key usage, extended key usage, validity, serial, whether it is a CA);
``load_chain`` reads a PEM file of one or more certificates; ``check_pair`` checks that a
certificate file and a key file exist, can be read and belong together; and
``expiry_problems`` lists the certificates that have expired or expire soon.  Every error
names the file and says what to do.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

#: Largest certificate or key file read (a chain of a few certificates is a few kB).
MAX_FILE_BYTES = 1 << 20

_KEY_USAGES = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Non Repudiation"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Sign"),
    ("crl_sign", "CRL Sign"),
)
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS Web Server Authentication",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS Web Client Authentication",
    ExtendedKeyUsageOID.CODE_SIGNING: "Code Signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "E-mail Protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "Time Stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP Signing",
}


class PkiError(Exception):
    """A certificate, key or CA file that cannot be used; the message names the file and the remedy."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fmt_time(t: dt.datetime) -> str:
    """``2027-12-08 01:47:40 UTC``."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def name_text(name: x509.Name) -> str:
    """A distinguished name as openssl prints it: ``CN=compute1, OU=compute, O=Neutrino``
    (in the certificate's order, unlike RFC 4514's reversed one)."""
    return ", ".join(f"{a.rfc4514_attribute_name}={a.value!s}" for a in name)


def common_name(name: x509.Name) -> str:
    """The (first) CN of ``name``, "" if it has none."""
    cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def name_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    found = name.get_attributes_for_oid(oid)
    return str(found[0].value) if found else ""


@dataclass(frozen=True)
class CertInfo:
    """What a client checks in a certificate, in the seed's terms."""

    subject: str
    issuer: str
    sans: tuple[str, ...]  # "DNS:localhost", "IP:127.0.0.1"
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    is_ca: bool
    path_length: int | None
    self_signed: bool
    fingerprint_sha256: str

    @property
    def serial_hex(self) -> str:
        """The serial as openssl prints it (``0a:06:30:...``)."""
        raw = self.serial.to_bytes(max(1, (self.serial.bit_length() + 7) // 8), "big")
        return ":".join(f"{b:02x}" for b in raw)

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until ``not_after`` (negative once expired)."""
        return (self.not_after - (now or utcnow())) // dt.timedelta(days=1)

    def validity(self) -> str:
        return f"{fmt_time(self.not_before)} to {fmt_time(self.not_after)}"


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def sans_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The subject alternative names, ``DNS:...`` and ``IP:...`` (others by their type)."""
    ext = _ext(cert, x509.SubjectAlternativeName)
    if not isinstance(ext, x509.SubjectAlternativeName):
        return ()
    out = []
    for gn in ext:
        if isinstance(gn, x509.DNSName):
            out.append(f"DNS:{gn.value}")
        elif isinstance(gn, x509.IPAddress):
            out.append(f"IP:{gn.value}")
        else:
            out.append(f"{type(gn).__name__}:{gn.value}")
    return tuple(out)


def describe(cert: x509.Certificate) -> CertInfo:
    """``cert`` in the seed's terms (see ``CertInfo``)."""
    ku = _ext(cert, x509.KeyUsage)
    usages = tuple(label for attr, label in _KEY_USAGES if isinstance(ku, x509.KeyUsage) and getattr(ku, attr))
    eku = _ext(cert, x509.ExtendedKeyUsage)
    ekus = (
        tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku) if isinstance(eku, x509.ExtendedKeyUsage) else ()
    )
    bc = _ext(cert, x509.BasicConstraints)
    is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
    return CertInfo(
        subject=name_text(cert.subject),
        issuer=name_text(cert.issuer),
        sans=sans_of(cert),
        key_usage=usages,
        extended_key_usage=ekus,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
        is_ca=is_ca,
        path_length=bc.path_length if isinstance(bc, x509.BasicConstraints) and bc.ca else None,
        self_signed=cert.subject == cert.issuer,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":"),
    )


def _read(path: Path, what: str, remedy: str) -> bytes:
    """The bytes of ``path``; PkiError naming the file and ``remedy`` when it cannot be read."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PkiError(f"{what} {path} does not exist: {remedy}") from None
    except PermissionError:
        raise PkiError(
            f"{what} {path} cannot be read (permission denied): run neutrino as the user that owns it, "
            "or give that user read access (keys: mode 0600)"
        ) from None
    except IsADirectoryError:
        raise PkiError(f"{what} {path} is a directory, not a file: {remedy}") from None
    except OSError as exc:
        raise PkiError(f"{what} {path} cannot be read ({exc.strerror}): {remedy}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PkiError(f"{what} {path} is larger than {MAX_FILE_BYTES} bytes: not a certificate or key file")
    return data


_CERT_REMEDY = "create it with `neutrino up` or `neutrino pki issue`, or point the configuration at the right file"
_KEY_REMEDY = (
    "create it together with its certificate (`neutrino up`, `neutrino pki rotate`, or `neutrino pki import` "
    "of a bundle), or point the configuration at the right file"
)


def load_chain(path: Path | str) -> list[x509.Certificate]:
    """Every certificate of the PEM file ``path``, in file order (leaf first for a chain).

    Raises PkiError when the file is missing, unreadable, or holds no PEM certificate."""
    path = Path(path)
    data = _read(path, "certificate file", _CERT_REMEDY)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError(f"certificate file {path} holds no valid PEM certificate ({exc}): {_CERT_REMEDY}") from None
    return certs


def load_key(path: Path | str) -> PrivateKeyTypes:
    """The private key in the PEM file ``path`` (unencrypted)."""
    path = Path(path)
    data = _read(path, "key file", _KEY_REMEDY)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"key file {path} holds no unencrypted PEM private key ({exc}): {_KEY_REMEDY}") from None


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_pair(cert_path: Path | str, key_path: Path | str) -> list[x509.Certificate]:
    """Check that the certificate file and the key file exist, can be read and match.

    Returns the certificate chain; raises PkiError naming both files and what to do."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    chain = load_chain(cert_path)
    key = load_key(key_path)
    if _spki(chain[0].public_key()) != _spki(key.public_key()):
        raise PkiError(
            f"the key in {key_path} does not belong to the certificate in {cert_path} "
            f"({name_text(chain[0].subject)}): install the matching pair, or issue a new one "
            "(`neutrino pki rotate` on a node with the CA)"
        )
    return chain


def expiry_problems(paths: Iterable[Path | str], warn_days: int, now: dt.datetime | None = None) -> list[str]:
    """One message per certificate (in the files ``paths``) that has expired, expires within
    ``warn_days`` days or is not valid yet; a file that cannot be read is a message too.

    Files that do not exist are skipped (the caller lists what it uses); a certificate
    found in several files is reported once, under its first file."""
    now = now or utcnow()
    out: list[str] = []
    seen: set[bytes] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            continue
        try:
            chain = load_chain(path)
        except PkiError as exc:
            out.append(str(exc))
            continue
        for cert in chain:
            fp = cert.fingerprint(hashes.SHA256())
            if fp in seen:
                continue
            seen.add(fp)
            msg = expiry_message(describe(cert), warn_days, now)
            if msg:
                out.append(f"{path}: {msg}")
    return out


def expiry_message(info: CertInfo, warn_days: int, now: dt.datetime) -> str:
    """ "" when ``info`` is valid for more than ``warn_days`` days, else what is wrong (with its dates)."""
    dates = f"(valid {info.validity()})"
    if now >= info.not_after:
        return f"certificate {info.subject} expired on {fmt_time(info.not_after)} {dates}"
    if now < info.not_before:
        return f"certificate {info.subject} is not valid before {fmt_time(info.not_before)} {dates}"
    left = info.not_after - now
    if left <= dt.timedelta(days=warn_days):
        days = left // dt.timedelta(days=1)
        when = f"in {days} days" if days != 1 else "in 1 day"
        return f"certificate {info.subject} expires {when} (on {fmt_time(info.not_after)}) {dates}"
    return ""


def chain_text(chain: Sequence[x509.Certificate], now: dt.datetime | None = None) -> list[str]:
    """Lines describing each certificate of ``chain`` (``neutrino pki show``)."""
    now = now or utcnow()
    lines: list[str] = []
    for i, cert in enumerate(chain):
        info = describe(cert)
        left = info.days_left(now)
        state = f"{left} days left" if left >= 0 else f"EXPIRED {-left} days ago"
        if now < info.not_before:
            state = "NOT VALID YET"
        lines += [
            f"  [{i}] subject: {info.subject}",
            f"      issuer:  {info.issuer}{'  (self-signed)' if info.self_signed else ''}",
            f"      serial:  {info.serial_hex} ({info.serial})",
        ]
        if info.sans:
            lines.append(f"      subject alternative names: {', '.join(info.sans)}")
        if info.key_usage:
            lines.append(f"      key usage: {', '.join(info.key_usage)}")
        if info.extended_key_usage:
            lines.append(f"      extended key usage: {', '.join(info.extended_key_usage)}")
        ca = "no"
        if info.is_ca:
            ca = "yes" + (f", path length {info.path_length}" if info.path_length is not None else "")
        lines += [f"      CA: {ca}", f"      validity: {info.validity()} ({state})"]
    return lines


def verify_chain(chain: Sequence[x509.Certificate], root: x509.Certificate, what: str) -> None:
    """Check that ``chain`` (leaf first) leads by signatures to ``root`` and that each
    certificate is valid now; PkiError naming ``what`` otherwise.  (No name or usage checks:
    this is for files we install, not for peers.)"""
    now = utcnow()
    links = [*chain]
    if not links or links[-1] != root:
        links.append(root)
    for cert, issuer in itertools.pairwise(links):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise PkiError(
                f"{what}: {name_text(cert.subject)} is not signed by {name_text(issuer.subject)} "
                "(a certificate of another CA?)"
            ) from None
    for cert in links:
        msg = expiry_message(describe(cert), 0, now)
        if msg:
            raise PkiError(f"{what}: {msg}")

"""Throwaway certificate sets for the TLS tests (unit and functional), made with
``cryptography`` directly so the tests of ``neutrino.pki.tls`` do not depend on
the CA code they are used with: a root, an intermediate, server leaves (with
SANs) and client leaves (``CN=host, OU=role``), a CRL, and expired leaves.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Neutrino"))
    return x509.Name(attrs)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Material:
    """A CA (root + intermediate) in ``directory``; leaves are written next to it."""

    directory: Path
    root_key: Key = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    inter_key: Key = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root = self._sign(_name("Test Root CA"), self.root_key, _name("Test Root CA"), self.root_key, ca=True)
        self.inter = self._sign(
            _name("Test Intermediate CA"), self.inter_key, self.root.subject, self.root_key, ca=True
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(_pem(self.root))
        self.revoked: list[int] = []

    def _sign(
        self,
        subject: x509.Name,
        key: Key,
        issuer: x509.Name,
        issuer_key: Key,
        *,
        ca: bool = False,
        sans: tuple[str, ...] = (),
        eku: x509.ObjectIdentifier | None = None,
        start: dt.datetime | None = None,
        days: int = 30,
    ) -> x509.Certificate:
        start = start or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if sans:
            alt: list[x509.GeneralName] = []
            for s in sans:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(s)))
                except ValueError:
                    alt.append(x509.DNSName(s))
            b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        if eku is not None:
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def leaf(
        self,
        name: str,
        *,
        cn: str,
        ou: str | None = None,
        sans: tuple[str, ...] = (),
        client: bool = False,
        start: dt.datetime | None = None,
        days: int = 30,
    ) -> tuple[Path, Path, x509.Certificate]:
        """(chain file = leaf + intermediate, key file, the leaf) named ``name``.pem/.key."""
        key = ec.generate_private_key(ec.SECP256R1())
        eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = self._sign(
            _name(cn, ou), key, self.inter.subject, self.inter_key, sans=sans, eku=eku, start=start, days=days
        )
        pem, key_file = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        pem.write_bytes(_pem(cert) + _pem(self.inter))
        key_file.write_bytes(_key_pem(key))
        key_file.chmod(0o600)
        return pem, key_file, cert

    def server(self, name: str = "server", cn: str = "localhost") -> tuple[Path, Path, x509.Certificate]:
        return self.leaf(name, cn=cn, sans=("localhost", "127.0.0.1", "::1"))

    def write_crl(self, name: str = "crl.pem", *, next_update_days: int = 7) -> Path:
        """A CRL signed by the intermediate listing ``self.revoked``."""
        now = dt.datetime.now(dt.UTC)
        next_update = now + dt.timedelta(days=next_update_days)
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.inter.subject)
            .last_update(min(now - dt.timedelta(minutes=5), next_update - dt.timedelta(days=1)))
            .next_update(next_update)
        )
        for serial in self.revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        path = self.directory / name
        path.write_bytes(b.sign(self.inter_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        return path

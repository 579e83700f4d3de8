"""Key pairs: per user, imported or generated.

A generated ``ssh`` key is RSA 2048: the OpenSSH public key is stored, the
PEM private key is returned once in the create response and never kept.
A generated ``x509`` key pair is a self-signed certificate plus its key.
Fingerprints follow Nova: MD5 of the key blob in colon hex for ``ssh``,
SHA-1 of the DER certificate for ``x509``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, func, insert, select

from neutrino.compute import faults
from neutrino.compute.microversion import Version
from neutrino.compute.validate import member, no_extra, page
from neutrino.context import RequestContext
from neutrino.db import tables as t
from neutrino.db.engine import Database, UnitOfWork
from neutrino.timeutil import now_iso

TYPES = ("ssh", "x509")
MAX_PER_USER = 100
_NAME_RE = re.compile(r"^[a-zA-Z0-9_\- .]{1,255}$")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    """MD5 colon-hex of the key blob of an OpenSSH public key line (ValueError if invalid)."""
    data = public_key.strip().encode()
    serialization.load_ssh_public_key(data)  # validates
    parts = data.split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    return _colon_hex(hashlib.md5(blob).digest())


def x509_fingerprint(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return _colon_hex(cert.fingerprint(hashes.SHA1()))


def generate_ssh(comment: str = "Generated-by-Neutrino") -> tuple[str, str]:
    """(OpenSSH public key line, PEM private key) of a new RSA 2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}\n", private


def generate_x509(user_id: str) -> tuple[str, str]:
    """(PEM certificate, PEM private key): self-signed for ``user_id``, valid ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "neutrino")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private


class KeypairService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- whose key pairs ------------------------------------------------------------------
    @staticmethod
    def owner(ctx: RequestContext, user_id: str | None, mv: Version, action: str) -> str:
        if user_id is None or user_id == ctx.user_id:
            return ctx.user_id
        if mv < (2, 10):
            raise faults.BadRequest("Query parameter 'user_id' requires microversion 2.10 or later")
        if not ctx.is_admin:
            raise faults.policy(f"os_compute_api:os-keypairs:{action}")
        return user_id

    # --- views ------------------------------------------------------------------------------
    @staticmethod
    def view(row: Any, mv: Version, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": row.name, "public_key": row.public_key, "fingerprint": row.fingerprint}
        if mv >= (2, 2):
            out["type"] = row.type
        if full:
            out.update(
                {
                    "user_id": row.user_id,
                    "created_at": row.created_at,
                    "updated_at": None,
                    "deleted": False,
                    "deleted_at": None,
                }
            )
        return out

    # --- reading ------------------------------------------------------------------------------
    def get(self, conn: Any, user_id: str, name: str) -> Any:
        row = conn.execute(select(t.keypairs).where(t.keypairs.c.user_id == user_id, t.keypairs.c.name == name)).first()
        if row is None:
            raise faults.NotFound(f"Keypair {name} not found for user {user_id}")
        return row

    def list(self, conn: Any, user_id: str, params: dict[str, list[str]]) -> list[Any]:
        rows = list(conn.execute(select(t.keypairs).where(t.keypairs.c.user_id == user_id).order_by(t.keypairs.c.name)))
        return page(rows, params, lambda r: r.name, "keypair")

    # --- writes ---------------------------------------------------------------------------------
    def create(self, ctx: RequestContext, uow: UnitOfWork, body: Any, mv: Version) -> dict[str, Any]:
        """Import or generate; returns the create response's ``keypair`` dict."""
        k = member(body, "keypair")
        allowed = {"name", "public_key"}
        if mv >= (2, 2):
            allowed.add("type")
        if mv >= (2, 10):
            allowed.add("user_id")
        no_extra(k, allowed)
        name = k.get("name")
        if not isinstance(name, str):
            raise faults.BadRequest("Invalid input for field/attribute keypair. 'name' is a required property")
        if not _NAME_RE.match(name) or not name.strip():
            raise faults.BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
        ktype = k.get("type", "ssh")
        if ktype not in TYPES:
            raise faults.BadRequest(
                f"Invalid input for field/attribute type. Value: {ktype}. {ktype!r} is not one of ['ssh', 'x509']"
            )
        user_id = self.owner(ctx, k.get("user_id"), mv, "create")
        public = k.get("public_key")
        private = None
        if public is None:
            public, private = generate_ssh() if ktype == "ssh" else generate_x509(user_id)
        elif not isinstance(public, str) or not public.strip():
            raise faults.BadRequest("Keypair data is invalid: failed to generate fingerprint")
        try:
            fingerprint = ssh_fingerprint(public) if ktype == "ssh" else x509_fingerprint(public)
        except (ValueError, TypeError, NotImplementedError):
            raise faults.BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
        conn = uow.conn
        count = conn.execute(
            select(func.count()).select_from(t.keypairs).where(t.keypairs.c.user_id == user_id)
        ).scalar_one()
        if count >= MAX_PER_USER:
            raise faults.Forbidden("Quota exceeded, too many key pairs.")
        if conn.execute(
            select(t.keypairs.c.name).where(t.keypairs.c.user_id == user_id, t.keypairs.c.name == name)
        ).first():
            raise faults.Conflict(f"Key pair '{name}' already exists.")
        conn.execute(
            insert(t.keypairs).values(
                user_id=user_id, name=name, type=ktype, public_key=public, fingerprint=fingerprint, created_at=now_iso()
            )
        )
        out = self.view(self.get(conn, user_id, name), mv)
        out["user_id"] = user_id
        if private is not None:
            out["private_key"] = private
        return out

    def delete(self, ctx: RequestContext, uow: UnitOfWork, name: str, user_id: str | None, mv: Version) -> None:
        owner = self.owner(ctx, user_id, mv, "delete")
        self.get(uow.conn, owner, name)
        uow.conn.execute(delete(t.keypairs).where(t.keypairs.c.user_id == owner, t.keypairs.c.name == name))

"""Fernet tokens: issue, validate (cached), revoke.

A token is a Fernet token (AES-CBC + HMAC, keys in ``key_dir``) whose
plaintext is a compact orjson array::

    [1, user_id, user_name, project_id, project_name, [role, ...],
     expires_at (epoch s), audit_id, issued_at (epoch ms), domain_id]

Roles are stored as assigned and expanded (implied roles) on validation.
Trailing ``=`` padding is stripped, as Keystone does.

Keys: every file in ``key_dir`` named by an integer is a key; the highest
number encrypts, all of them decrypt (``MultiFernet``).  If there is none, key
``0`` is created (mode 0600) atomically, so several replicas starting at once
end up sharing one key.  Keys are read when the provider is built
(``reload_keys()`` re-reads them).

Revocation (needs a ``Database``; without one nothing can be revoked):

* ``revoke(audit_id, expires_at)`` revokes one token;
* ``revoke_subject("u", user_id, until)`` / ``("p", project_id, until)``
  revokes every token of a user / project issued up to now; the row is kept
  until ``until`` (after which no such token can still be unexpired).

Rows live in ``revoked_tokens`` (``audit_id`` is the audit id or
``u:<user id>`` / ``p:<project id>``; ``revoked_at`` is epoch milliseconds).
Each provider re-reads recent rows at most once per ``refresh_interval``, so a
revocation made through another replica takes effect within about a second.

Validation of a cached token costs a dictionary lookup plus the expiry and
revocation checks, i.e. microseconds.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, select, update

from neutrino.context import AuthInfo, expand_roles
from neutrino.db import tables

if TYPE_CHECKING:
    from neutrino.db.engine import Database

LOG = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
MAX_TOKEN_LEN = 2048
#: Re-read revocations this far back (ms) on each incremental refresh, to
#: tolerate clock skew between replicas and commit delays.
OVERLAP_MS = 60_000
#: Full re-read (dropping expired entries) at this interval (s).
FULL_RELOAD_S = 300.0


class TokenError(Exception):
    """The token cannot be used.  Subclasses say why."""


class TokenMalformed(TokenError):
    """Not a token of ours (bad encoding, bad key, bad payload)."""


class TokenExpired(TokenError):
    """The token's ``expires_at`` has passed."""


class TokenRevoked(TokenError):
    """The token, its user or its project has been revoked."""


class TokenProvider:
    """Issues and validates tokens; see the module docstring for the contract.

    Thread-safe.  ``db`` is optional: without it ``revoke*`` raise
    ``RuntimeError`` and validation checks no revocation list.
    """

    def __init__(
        self,
        key_dir: Path | str,
        db: Database | None = None,
        *,
        cache_size: int = 4096,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_dir = Path(key_dir)
        self.db = db
        self.cache_size = cache_size
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._fernet = self._load_keys()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[AuthInfo, int]] = OrderedDict()
        self._revoked: dict[str, int] = {}  # audit id -> expires_at (s)
        self._subjects: dict[str, int] = {}  # "u:id" / "p:id" -> revoked_at (ms)
        self._refresh_lock = threading.Lock()
        self._next_refresh = 0.0
        self._next_full = 0.0
        self._since_ms = 0
        self._next_purge = 0.0

    # --- keys -------------------------------------------------------------------
    def _load_keys(self) -> MultiFernet:
        self.key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = self._read_keys()
        if not keys:
            self._create_first_key()
            keys = self._read_keys()
        if not keys:
            raise RuntimeError(f"no usable Fernet key in {self.key_dir}")
        return MultiFernet([Fernet(k) for _, k in sorted(keys, reverse=True)])

    def _read_keys(self) -> list[tuple[int, bytes]]:
        out = []
        for path in self.key_dir.iterdir():
            if path.name.isdigit() and path.is_file():
                data = path.read_bytes().strip()
                if data:
                    out.append((int(path.name), data))
        return out

    def _create_first_key(self) -> None:
        tmp = self.key_dir / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, Fernet.generate_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.key_dir / "0")  # atomic; loses quietly to a concurrent creator
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def reload_keys(self) -> None:
        """Re-read the key directory (after a rotation)."""
        self._fernet = self._load_keys()

    # --- issue / validate -------------------------------------------------------------
    def issue(
        self,
        user_id: str,
        user_name: str,
        project_id: str,
        project_name: str,
        roles: list[str] | tuple[str, ...],
        ttl: int,
        *,
        domain_id: str = "default",
        expires_at: int | None = None,
    ) -> tuple[str, AuthInfo]:
        """Mint a token valid for ``ttl`` seconds (or until ``expires_at``, epoch
        seconds: a rescoped token keeps its parent's expiry); returns it with
        what it says.

        ``project_id`` empty means unscoped (then ``roles`` should be empty).
        """
        now = self._clock()
        issued_ms = int(now * 1000)
        expires_at = int(expires_at) if expires_at is not None else int(now) + int(ttl)
        audit_id = secrets.token_urlsafe(16)
        payload = [
            PAYLOAD_VERSION,
            user_id,
            user_name,
            project_id,
            project_name,
            list(roles),
            expires_at,
            audit_id,
            issued_ms,
            domain_id,
        ]
        token = self._fernet.encrypt(orjson.dumps(payload)).decode().rstrip("=")
        auth = self._auth_from(payload)
        self._remember(token, auth, issued_ms)
        return token, auth

    @staticmethod
    def _auth_from(p: list) -> AuthInfo:
        return AuthInfo(
            user_id=p[1],
            user_name=p[2],
            project_id=p[3],
            project_name=p[4],
            roles=expand_roles(p[5]),
            expires_at=float(p[6]),
            audit_id=p[7],
            issued_at=p[8] / 1000.0,
            domain_id=p[9],
        )

    def _remember(self, token: str, auth: AuthInfo, issued_ms: int) -> None:
        with self._lock:
            self._cache[token] = (auth, issued_ms)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _decode(self, token: str) -> tuple[AuthInfo, int]:
        if not token or len(token) > MAX_TOKEN_LEN:
            raise TokenMalformed("bad token length")
        try:
            raw = self._fernet.decrypt(token + "=" * (-len(token) % 4))
            p = orjson.loads(raw)
            if not isinstance(p, list) or len(p) < 10 or p[0] != PAYLOAD_VERSION:
                raise ValueError("unknown payload")
            return self._auth_from(p), int(p[8])
        except (InvalidToken, ValueError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
            raise TokenMalformed("token could not be decoded") from exc

    def validate(self, token: str) -> AuthInfo:
        """Return what ``token`` says, or raise ``TokenMalformed``,
        ``TokenExpired`` or ``TokenRevoked`` (all ``TokenError``)."""
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                self._cache.move_to_end(token)
        if hit is None:
            hit = self._decode(token)
            fresh = True
        else:
            fresh = False
        auth, issued_ms = hit
        if auth.expires_at <= self._clock():
            with self._lock:
                self._cache.pop(token, None)
            raise TokenExpired("token expired")
        self._check_revoked(auth, issued_ms)
        if fresh:
            self._remember(token, auth, issued_ms)
        return auth

    # --- revocation -----------------------------------------------------------------------
    def _check_revoked(self, auth: AuthInfo, issued_ms: int) -> None:
        if self.db is None:
            return
        if self._clock() >= self._next_refresh:
            self.refresh_revocations()
        if auth.audit_id in self._revoked:
            raise TokenRevoked("token revoked")
        for key in ("u:" + auth.user_id, "p:" + auth.project_id):
            at = self._subjects.get(key)
            if at is not None and issued_ms <= at:
                raise TokenRevoked("token revoked")

    def refresh_revocations(self, *, full: bool = False) -> None:
        """Re-read revocations from the database (normally automatic).

        Only one thread refreshes at a time; the others go on with the
        current set rather than wait.
        """
        if self.db is None or not self._refresh_lock.acquire(blocking=False):
            return
        try:
            now = self._clock()
            full = full or now >= self._next_full
            start_ms = int(now * 1000)
            q = select(
                tables.revoked_tokens.c.audit_id, tables.revoked_tokens.c.expires_at, tables.revoked_tokens.c.revoked_at
            )
            if full:
                q = q.where(tables.revoked_tokens.c.expires_at > int(now))
            else:
                q = q.where(tables.revoked_tokens.c.revoked_at >= self._since_ms - OVERLAP_MS)
            try:
                with self.db.read() as conn:
                    rows = conn.execute(q).all()
            except Exception:
                LOG.exception("could not refresh token revocations")
                self._next_refresh = now + self.refresh_interval
                return
            revoked = {} if full else dict(self._revoked)
            subjects = {} if full else dict(self._subjects)
            for audit_id, expires_at, revoked_at in rows:
                if ":" in audit_id:
                    subjects[audit_id] = max(revoked_at, subjects.get(audit_id, 0))
                else:
                    revoked[audit_id] = expires_at
            self._revoked, self._subjects = revoked, subjects
            self._since_ms = start_ms
            self._next_refresh = now + self.refresh_interval
            if full:
                self._next_full = now + FULL_RELOAD_S
        finally:
            self._refresh_lock.release()

    def revoke(self, audit_id: str, expires_at: float) -> None:
        """Revoke the token with ``audit_id`` (kept on record until ``expires_at``)."""
        self._store(audit_id, int(expires_at), int(self._clock() * 1000))
        with self._refresh_lock:  # not lost to a concurrent refresh swapping the dicts
            self._revoked[audit_id] = int(expires_at)

    def revoke_subject(self, kind: str, subject_id: str, until: float) -> None:
        """Revoke all tokens issued so far for user (``kind="u"``) or project (``"p"``).

        ``until`` must be at least now plus the longest token lifetime.
        """
        if kind not in ("u", "p"):
            raise ValueError("kind must be 'u' or 'p'")
        key, now_ms = f"{kind}:{subject_id}", int(self._clock() * 1000)
        self._store(key, int(until), now_ms)
        with self._refresh_lock:
            self._subjects[key] = max(now_ms, self._subjects.get(key, 0))

    def _store(self, key: str, expires_at: int, revoked_at: int) -> None:
        if self.db is None:
            raise RuntimeError("token revocation needs a database")
        t = tables.revoked_tokens
        purge = self._clock() >= self._next_purge

        def write(uow) -> None:
            res = uow.conn.execute(
                update(t).where(t.c.audit_id == key).values(expires_at=expires_at, revoked_at=revoked_at)
            )
            if res.rowcount == 0:
                uow.conn.execute(t.insert().values(audit_id=key, expires_at=expires_at, revoked_at=revoked_at))
            if purge:
                uow.conn.execute(delete(t).where(t.c.expires_at < int(self._clock()) - 60))

        self.db.run_write(write)
        if purge:
            self._next_purge = self._clock() + 600

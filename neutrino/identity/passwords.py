"""Password hashing with scrypt.

Stored form (self-describing, so parameters can change without migrations)::

    scrypt$<log2 n>$<r>$<p>$<salt, urlsafe b64>$<derived key, urlsafe b64>

``hash_password`` costs tens of milliseconds by design; call it (and
``verify_password``) off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
#: Default cost: n = 2**14, r = 8, p = 1 (16 MiB, ~50 ms).
LOG2_N, R, P = 14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
_MAXMEM = 256 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p, dklen=dklen, maxmem=_MAXMEM)


def hash_password(password: str, *, log2_n: int = LOG2_N, r: int = R, p: int = P) -> str:
    """Return the stored form of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, log2_n, r, p, KEY_BYTES)
    return f"{SCHEME}${log2_n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed or empty ``stored``.

    The final comparison is constant-time.
    """
    if not stored or password is None:
        return False
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        ln, rr, pp = int(log2_n), int(r), int(p)
        if not (1 <= ln <= 20 and 1 <= rr <= 32 and 1 <= pp <= 16):
            return False
        expected = _unb64(key)
        actual = _derive(password, _unb64(salt), ln, rr, pp, len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)

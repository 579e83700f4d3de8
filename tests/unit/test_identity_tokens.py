"""neutrino.identity.tokens: Fernet token issue, validation, caching, revocation."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from cryptography.fernet import Fernet

from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.identity.tokens import TokenExpired, TokenMalformed, TokenProvider, TokenRevoked


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path}/t.db")
    upgrade(d.engine)
    yield d
    d.dispose()


def _issue(tp: TokenProvider, roles=("member",), ttl=3600, user="u1", project="p1"):
    return tp.issue(user, f"name-{user}", project, f"name-{project}", list(roles), ttl)


def test_issue_validate_round_trip(tmp_path):
    tp = TokenProvider(tmp_path / "keys")
    token, auth = _issue(tp, roles=["admin"])
    assert "=" not in token and len(token) < 400
    assert auth.roles == ("admin", "manager", "member", "reader")
    # A fresh provider (no cache) on the same key dir decodes the same thing.
    other = TokenProvider(tmp_path / "keys")
    got = other.validate(token)
    assert got == auth
    assert (got.user_id, got.user_name, got.project_id, got.project_name) == ("u1", "name-u1", "p1", "name-p1")
    assert got.expires_at - time.time() == pytest.approx(3600, abs=2)
    assert got.issued_at == pytest.approx(time.time(), abs=2)
    assert len(got.audit_id) == 22


def test_key_file_created_private_and_shared(tmp_path):
    keys = tmp_path / "keys"
    TokenProvider(keys)
    files = list(keys.iterdir())
    assert [f.name for f in files] == ["0"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # Concurrent first use of an empty directory ends with one shared key.
    keys2 = tmp_path / "keys2"
    providers: list[TokenProvider] = []
    threads = [threading.Thread(target=lambda: providers.append(TokenProvider(keys2))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [f.name for f in keys2.iterdir()] == ["0"]
    token, _ = _issue(providers[0])
    for p in providers:
        p.validate(token)


def test_rotation_highest_key_encrypts_all_decrypt(tmp_path):
    keys = tmp_path / "keys"
    old = TokenProvider(keys)
    old_token, _ = _issue(old)
    (keys / "1").write_bytes(Fernet.generate_key())
    os.chmod(keys / "1", 0o600)
    new = TokenProvider(keys)
    new_token, _ = _issue(new)
    assert new.validate(old_token).user_id == "u1"
    with pytest.raises(TokenMalformed):
        TokenProvider(tmp_path / "other").validate(new_token)
    old.reload_keys()
    assert old.validate(new_token).user_id == "u1"


@pytest.mark.parametrize("bad", ["", "garbage", "gAAAAA", "x" * 5000])
def test_malformed(tmp_path, bad):
    with pytest.raises(TokenMalformed):
        TokenProvider(tmp_path / "keys").validate(bad)


def test_tampered_and_foreign_tokens(tmp_path):
    tp = TokenProvider(tmp_path / "a")
    token, _ = _issue(tp)
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(TokenMalformed):
        TokenProvider(tmp_path / "a").validate(flipped)
    with pytest.raises(TokenMalformed):
        TokenProvider(tmp_path / "b").validate(token)


def test_expiry_is_honoured_even_when_cached(tmp_path):
    clock = Clock()
    tp = TokenProvider(tmp_path / "keys", clock=clock)
    token, _ = _issue(tp, ttl=10)
    tp.validate(token)  # cached now
    clock.now += 9
    tp.validate(token)
    clock.now += 2
    with pytest.raises(TokenExpired):
        tp.validate(token)
    fresh = TokenProvider(tmp_path / "keys", clock=clock)
    with pytest.raises(TokenExpired):
        fresh.validate(token)


def test_cache_is_bounded_and_fast(tmp_path):
    tp = TokenProvider(tmp_path / "keys", cache_size=4)
    tokens = [_issue(tp)[0] for _ in range(10)]
    assert len(tp._cache) == 4
    for t in tokens:  # evicted ones are decoded again
        tp.validate(t)
    t = tokens[-1]
    start = time.perf_counter()
    for _ in range(5000):
        tp.validate(t)
    per_call = (time.perf_counter() - start) / 5000
    assert per_call < 100e-6, per_call


def test_revoke_takes_effect_locally_and_on_other_replica(tmp_path, db):
    clock = Clock()
    a = TokenProvider(tmp_path / "keys", db, clock=clock)
    b = TokenProvider(tmp_path / "keys", db, clock=clock)
    token, auth = _issue(a)
    b.validate(token)  # cached on b, revocation set loaded
    a.revoke(auth.audit_id, auth.expires_at)
    with pytest.raises(TokenRevoked):
        a.validate(token)
    # b refreshes its revocation set at most once per second.
    b.validate(token)
    clock.now += 1.01
    with pytest.raises(TokenRevoked):
        b.validate(token)
    # A provider started later loads the revocation too.
    with pytest.raises(TokenRevoked):
        TokenProvider(tmp_path / "keys", db).validate(token)
    # Revoking twice is fine.
    a.revoke(auth.audit_id, auth.expires_at)


def test_revoke_subject_only_hits_earlier_tokens(tmp_path, db):
    clock = Clock()
    a = TokenProvider(tmp_path / "keys", db, clock=clock)
    b = TokenProvider(tmp_path / "keys", db, clock=clock)
    old_user, _ = _issue(a, user="u1", project="p1")
    other_user, _ = _issue(a, user="u2", project="p2")
    b.validate(old_user)
    clock.now += 0.003
    a.revoke_subject("u", "u1", clock.now + 3700)
    clock.now += 0.003
    new_user, _ = _issue(a, user="u1", project="p1")
    with pytest.raises(TokenRevoked):
        a.validate(old_user)
    a.validate(new_user)
    a.validate(other_user)
    clock.now += 1.5
    with pytest.raises(TokenRevoked):
        b.validate(old_user)
    b.validate(new_user)
    a.revoke_subject("p", "p2", clock.now + 3700)
    with pytest.raises(TokenRevoked):
        a.validate(other_user)
    with pytest.raises(ValueError):
        a.revoke_subject("x", "p2", 0)


def test_without_database_no_revocation_store(tmp_path):
    tp = TokenProvider(tmp_path / "keys")
    token, auth = _issue(tp)
    with pytest.raises(RuntimeError):
        tp.revoke(auth.audit_id, auth.expires_at)
    assert tp.validate(token).audit_id == auth.audit_id


def test_unscoped_token(tmp_path):
    tp = TokenProvider(tmp_path / "keys")
    token, auth = tp.issue("u1", "n", "", "", [], 60)
    assert tp.validate(token).project_id == "" and auth.roles == ()

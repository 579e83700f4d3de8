"""neutrino.identity.bootstrap: first-start data and credential files, idempotent."""

from __future__ import annotations

import shlex
import stat

import orjson
import pytest
from sqlalchemy import func, select

from neutrino.config import defaults
from neutrino.db import tables
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.identity import store
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.passwords import verify_password


@pytest.fixture
def env(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/t.db")
    upgrade(db.engine)
    cfg = defaults(tmp_path).with_overrides({("identity", "bind_port"): "5123", ("identity", "region"): "RegionX"})
    yield cfg, db, tmp_path / "state"
    db.dispose()


def _openrc(path):
    out = {}
    for line in path.read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if parts and parts[0] == "export":
            key, _, val = parts[1].partition("=")
            out[key] = val
    return out


def _counts(db):
    with db.read() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (tables.projects, tables.users, tables.roles, tables.role_assignments)
        }


def _password_ok(db, user, password):
    with db.read() as conn:
        return verify_password(password, store.find_user(conn, user)["password_hash"])


def test_first_run_creates_everything(env):
    cfg, db, state = env
    res = bootstrap(cfg, db, state)
    assert _counts(db) == {"projects": 3, "users": 3, "roles": 5, "role_assignments": 3}
    assert set(res["role_ids"]) == {"admin", "manager", "member", "reader", "service"}
    with db.read() as conn:
        assert [
            r["role_name"]
            for r in store.list_assignments(conn, user_id=res["admin_user_id"], project_id=res["admin_project_id"])
        ] == ["admin"]
        assert [
            r["role_name"]
            for r in store.list_assignments(conn, user_id=res["demo_user_id"], project_id=res["demo_project_id"])
        ] == ["member"]
        assert len(store.get_project(conn, res["admin_project_id"])["id"]) == 32
    admin = _openrc(state / "admin-openrc")
    assert admin == {
        "OS_AUTH_URL": "https://127.0.0.1:5123/v3",  # TLS is the default
        "OS_CACERT": str(state / "pki" / "ca.pem"),
        "OS_USERNAME": "admin",
        "OS_PASSWORD": res["admin_password"],
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": "RegionX",
        "OS_INTERFACE": "public",
    }
    assert _openrc(state / "demo-openrc")["OS_PASSWORD"] == res["demo_password"]
    clouds = orjson.loads((state / "clouds.yaml").read_bytes())["clouds"]
    assert clouds["demo"]["auth"]["password"] == res["demo_password"]
    assert clouds["admin"]["auth"]["project_name"] == "admin"
    assert clouds["admin"]["region_name"] == "RegionX"
    assert {c["cacert"] for c in clouds.values()} == {str(state / "pki" / "ca.pem")}
    assert clouds["admin"]["auth"]["auth_url"] == "https://127.0.0.1:5123/v3"
    for name in ("admin-openrc", "demo-openrc", "agent-openrc", "clouds.yaml"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    assert _password_ok(db, "admin", res["admin_password"])
    assert _password_ok(db, "demo", res["demo_password"])
    assert res["reset"] == []


def test_second_run_changes_nothing(env):
    cfg, db, state = env
    first = bootstrap(cfg, db, state)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()}
    second = bootstrap(cfg, db, state)
    assert second["written"] == [] and second["reset"] == []
    for key in ("admin_password", "demo_password", "admin_user_id", "demo_project_id", "role_ids"):
        assert second[key] == first[key]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in state.iterdir()} == before
    assert _counts(db) == {"projects": 3, "users": 3, "roles": 5, "role_assignments": 3}


def test_missing_files_are_rewritten_with_the_same_passwords(env):
    cfg, db, state = env
    first = bootstrap(cfg, db, state)
    (state / "demo-openrc").unlink()
    again = bootstrap(cfg, db, state)  # password read back from clouds.yaml
    assert again["written"] == [str(state / "demo-openrc")]
    assert again["demo_password"] == first["demo_password"]
    assert _openrc(state / "demo-openrc")["OS_PASSWORD"] == first["demo_password"]
    (state / "clouds.yaml").unlink()
    again = bootstrap(cfg, db, state)  # read back from the openrc files
    assert again["written"] == [str(state / "clouds.yaml")] and again["reset"] == []
    assert (
        orjson.loads((state / "clouds.yaml").read_bytes())["clouds"]["demo"]["auth"]["password"]
        == first["demo_password"]
    )
    # Only clouds.yaml left: passwords are read back from it.
    (state / "admin-openrc").unlink()
    (state / "demo-openrc").unlink()
    third = bootstrap(cfg, db, state)
    assert third["admin_password"] == first["admin_password"] and third["reset"] == []


def test_lost_password_is_reset(env):
    cfg, db, state = env
    first = bootstrap(cfg, db, state)
    for p in ("admin-openrc", "demo-openrc", "clouds.yaml"):
        (state / p).unlink()
    again = bootstrap(cfg, db, state)
    assert sorted(again["reset"]) == ["admin", "demo"]
    assert again["admin_password"] != first["admin_password"]
    assert again["admin_user_id"] == first["admin_user_id"]
    assert _password_ok(db, "admin", again["admin_password"])
    assert _openrc(state / "admin-openrc")["OS_PASSWORD"] == again["admin_password"]


def test_public_host_in_auth_url(env):
    cfg, db, state = env
    cfg = cfg.with_overrides({("identity", "public_host"): "ctl.example"})
    assert bootstrap(cfg, db, state)["auth_url"] == "https://ctl.example:5123/v3"


def test_turning_tls_off_and_on_rewrites_the_files_with_the_same_passwords(env):
    cfg, db, state = env
    first = bootstrap(cfg, db, state)
    plain = cfg.with_overrides({("DEFAULT", "use_ssl"): "false"})  # `neutrino up --no-tls`
    off = bootstrap(plain, db, state)
    assert sorted(off["written"]) == sorted(
        str(state / n) for n in ("admin-openrc", "agent-openrc", "clouds.yaml", "demo-openrc")
    )
    admin = _openrc(state / "admin-openrc")
    assert admin["OS_AUTH_URL"] == "http://127.0.0.1:5123/v3" and "OS_CACERT" not in admin
    assert admin["OS_PASSWORD"] == first["admin_password"] and off["reset"] == []
    clouds = orjson.loads((state / "clouds.yaml").read_bytes())["clouds"]
    assert all("cacert" not in c for c in clouds.values())
    on = bootstrap(cfg, db, state)
    assert len(on["written"]) == 4 and _openrc(state / "demo-openrc")["OS_CACERT"] == str(state / "pki" / "ca.pem")
    assert on["demo_password"] == first["demo_password"]

"""Keystone v3 subset served by neutrino.identity.app, in-process."""

from __future__ import annotations

import warnings

import pytest

from neutrino.config import defaults
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.identity.app import build_identity_app
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.tokens import TokenProvider, TokenRevoked

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

UNAUTHORIZED = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}


class Env:
    def __init__(self, tmp_path, catalog=None):
        self.db = Database(f"sqlite:///{tmp_path}/t.db")
        upgrade(self.db.engine)
        self.cfg = defaults(tmp_path).with_overrides({("identity", "public_host"): "ctl"})
        self.boot = bootstrap(self.cfg, self.db, tmp_path / "state")
        self.tokens = TokenProvider(tmp_path / "keys", self.db)
        self.client = TestClient(build_identity_app(self.cfg, self.db, self.tokens, catalog))

    def auth(self, user, password, project=None, *, status=201, **extra):
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
                }
            }
        }
        if project is not None:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        body["auth"].update(extra)
        r = self.client.post("/v3/auth/tokens", json=body)
        assert r.status_code == status, r.text
        return r

    def token(self, user, password, project=None):
        return self.auth(user, password, project).headers["X-Subject-Token"]

    def admin(self):
        return self.token("admin", self.boot["admin_password"], "admin")

    def demo(self):
        return self.token("demo", self.boot["demo_password"], "demo")

    def call(self, method, path, token, status=None, **kw):
        r = self.client.request(method, path, headers={"X-Auth-Token": token}, **kw)
        if status is not None:
            assert r.status_code == status, r.text
        return r


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.db.dispose()


def test_version_discovery(env):
    r = env.client.get("/")
    assert r.status_code == 300
    (v,) = r.json()["versions"]["values"]
    assert v["id"].startswith("v3.") and v["status"] == "stable"
    assert v["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    assert v["links"] == [{"rel": "self", "href": "http://testserver/v3/"}]
    for path in ("/v3", "/v3/"):
        r = env.client.get(path)
        assert r.status_code == 200 and r.json()["version"]["id"] == v["id"]


def test_password_auth_project_scoped(env):
    r = env.auth("admin", env.boot["admin_password"], "admin")
    tok = r.json()["token"]
    assert r.headers["X-Subject-Token"].startswith("gAAAAA")
    assert tok["methods"] == ["password"]
    assert tok["user"] == {
        "id": env.boot["admin_user_id"],
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
        "password_expires_at": None,
    }
    assert tok["project"] == {
        "id": env.boot["admin_project_id"],
        "name": "admin",
        "domain": {"id": "default", "name": "Default"},
    }
    ids = env.boot["role_ids"]
    assert tok["roles"] == [{"id": ids[n], "name": n} for n in ("admin", "manager", "member", "reader")]
    assert tok["expires_at"].endswith("Z") and tok["issued_at"] < tok["expires_at"]
    assert len(tok["audit_ids"]) == 1
    auth = env.tokens.validate(r.headers["X-Subject-Token"])
    assert auth.project_id == env.boot["admin_project_id"] and "admin" in auth.roles


def test_catalog(env):
    cat = env.auth("demo", env.boot["demo_password"], "demo").json()["token"]["catalog"]
    by_type = {s["type"]: s for s in cat}
    assert set(by_type) == {"identity", "network"}
    for stype, url in (("identity", "https://ctl:5000/v3"), ("network", "https://ctl:9696")):  # TLS: the default
        eps = by_type[stype]["endpoints"]
        assert sorted(e["interface"] for e in eps) == ["admin", "internal", "public"]
        assert {e["url"] for e in eps} == {url}
        assert {(e["region"], e["region_id"]) for e in eps} == {("RegionOne", "RegionOne")}
    tok = env.demo()
    assert env.call("GET", "/v3/auth/catalog", tok, 200).json()["catalog"] == cat


def test_custom_catalog_endpoints(tmp_path):
    e = Env(
        tmp_path,
        catalog=[
            ("identity", "keystone", "http://h:5000/v3"),
            ("network", "neutron", "http://h:9696"),
            ("compute", "nova", "http://h:8774/v2.1"),
            ("image", "glance", "http://h:9292"),
        ],
    )
    cat = e.auth("admin", e.boot["admin_password"], "admin").json()["token"]["catalog"]
    assert [(s["type"], s["name"], s["endpoints"][0]["url"]) for s in cat][2:] == [
        ("compute", "nova", "http://h:8774/v2.1"),
        ("image", "glance", "http://h:9292"),
    ]
    tok = e.admin()
    assert len(e.call("GET", "/v3/endpoints", tok, 200).json()["endpoints"]) == 12
    services = e.call("GET", "/v3/services?type=image", tok, 200).json()["services"]
    assert [s["name"] for s in services] == ["glance"]
    assert e.call("GET", f"/v3/services/{services[0]['id']}", tok, 200).json()["service"]["type"] == "image"
    e.db.dispose()


@pytest.mark.parametrize(
    "user,password,project",
    [
        ("admin", "wrong", "admin"),
        ("nobody", "x", "admin"),
        ("demo", None, "admin"),
        ("admin", None, "no-such-project"),
    ],
)
def test_auth_failures_are_401(env, user, password, project):
    if password is None:
        password = env.boot[f"{user}_password"]
    r = env.auth(user, password, project, status=401)
    assert r.json() == UNAUTHORIZED
    assert "X-Subject-Token" not in r.headers


def test_auth_variants(env):
    pw = env.boot["admin_password"]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": env.boot["admin_user_id"], "password": pw}},
            },
            "scope": {"project": {"id": env.boot["demo_project_id"]}},
        }
    }
    # admin has no role on demo
    assert env.client.post("/v3/auth/tokens", json=body).status_code == 401
    body["auth"]["scope"]["project"]["id"] = env.boot["admin_project_id"]
    assert env.client.post("/v3/auth/tokens", json=body).status_code == 201
    # Unknown domain
    r = env.client.post(
        "/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": "admin", "domain": {"name": "other"}, "password": pw}},
                }
            }
        },
    )
    assert r.status_code == 401
    # No scope: the default project (bootstrap sets it).
    r = env.auth("admin", pw)
    assert r.json()["token"]["project"]["name"] == "admin"
    # Explicitly unscoped: no project, no catalog.
    tok = env.auth("admin", pw, scope="unscoped").json()["token"]
    assert "project" not in tok and "catalog" not in tok and "roles" not in tok
    # Malformed bodies
    assert env.client.post("/v3/auth/tokens", content=b"{nope").status_code == 400
    assert env.client.post("/v3/auth/tokens", json={"auth": {}}).status_code == 400
    assert (
        env.client.post(
            "/v3/auth/tokens?nocatalog",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": pw}},
                    }
                }
            },
        ).status_code
        == 201
    )


def test_token_method_rescopes(env):
    pw = env.boot["admin_password"]
    unscoped = env.auth("admin", pw, scope="unscoped")
    exp = unscoped.json()["token"]["expires_at"]
    r = env.client.post(
        "/v3/auth/tokens",
        json={
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        },
    )
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["project"]["name"] == "admin" and tok["methods"] == ["token"]
    assert tok["expires_at"] == exp  # a rescoped token keeps its parent's expiry
    r = env.client.post(
        "/v3/auth/tokens", json={"auth": {"identity": {"methods": ["token"], "token": {"id": "bogus"}}}}
    )
    assert r.status_code == 401


def test_validate_head_and_revoke(env):
    admin, demo = env.admin(), env.demo()
    h = {"X-Auth-Token": admin, "X-Subject-Token": demo}
    r = env.client.get("/v3/auth/tokens", headers=h)
    assert r.status_code == 200 and r.headers["X-Subject-Token"] == demo
    tok = r.json()["token"]
    assert tok["user"]["name"] == "demo" and [x["name"] for x in tok["roles"]] == ["member", "reader"]
    assert "catalog" in tok
    assert "catalog" not in env.client.get("/v3/auth/tokens?nocatalog", headers=h).json()["token"]
    assert env.client.head("/v3/auth/tokens", headers=h).status_code == 200
    # A member may validate only its own token.
    assert (
        env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": admin}).status_code == 403
    )
    assert env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}).status_code == 200
    # Invalid subject 404, invalid caller 401.
    assert (
        env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": "junk"}).status_code == 404
    )
    r = env.client.get("/v3/auth/tokens", headers={"X-Auth-Token": "junk", "X-Subject-Token": demo})
    assert r.status_code == 401 and r.json() == UNAUTHORIZED
    # Revoke (self-service)
    assert (
        env.client.delete("/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}).status_code == 204
    )
    assert env.call("GET", "/v3/auth/catalog", demo).status_code == 401
    assert env.client.head("/v3/auth/tokens", headers=h).status_code == 404
    # Another replica sharing key dir and database sees the revocation (within ~1 s).
    other = TokenProvider(env.tokens.key_dir, env.db)
    with pytest.raises(TokenRevoked):
        other.validate(demo)


def test_missing_or_bad_caller_token(env):
    for headers in ({}, {"X-Auth-Token": "nope"}):
        r = env.client.get("/v3/projects", headers=headers)
        assert r.status_code == 401 and r.json() == UNAUTHORIZED
        assert r.headers["WWW-Authenticate"].startswith("Keystone")


def test_project_user_role_flow(env):
    adm = env.admin()
    p = env.call("POST", "/v3/projects", adm, 201, json={"project": {"name": "X", "description": "d"}}).json()[
        "project"
    ]
    assert (p["name"], p["domain_id"], p["enabled"], p["is_domain"], p["description"]) == (
        "X",
        "default",
        True,
        False,
        "d",
    )
    r = env.call("POST", "/v3/projects", adm, 409, json={"project": {"name": "X"}})
    assert r.json()["error"]["title"] == "Conflict"
    assert env.call("GET", "/v3/projects/X", adm, 404).json() == {
        "error": {"code": 404, "title": "Not Found", "message": "Could not find project: X."}
    }
    assert [x["id"] for x in env.call("GET", "/v3/projects?name=X", adm, 200).json()["projects"]] == [p["id"]]
    assert env.call("GET", f"/v3/projects/{p['id']}", adm, 200).json()["project"]["name"] == "X"
    assert (
        len(env.call("GET", "/v3/projects", adm, 200).json()["projects"]) == 4
    )  # admin, demo, service (the agents), X
    upd = env.call("PATCH", f"/v3/projects/{p['id']}", adm, 200, json={"project": {"description": "new"}})
    assert upd.json()["project"]["description"] == "new"

    u = env.call(
        "POST",
        "/v3/users",
        adm,
        201,
        json={"user": {"name": "U", "password": "P", "default_project_id": p["id"], "enabled": True}},
    ).json()["user"]
    assert "password" not in u and "password_hash" not in u and u["default_project_id"] == p["id"]
    env.call("POST", "/v3/users", adm, 409, json={"user": {"name": "U", "password": "P"}})
    assert [x["name"] for x in env.call("GET", "/v3/users?name=U", adm, 200).json()["users"]] == ["U"]
    # No role yet: cannot get a token for X.
    env.auth("U", "P", "X", status=401)

    roles = env.call("GET", "/v3/roles?name=member", adm, 200).json()["roles"]
    assert [r["name"] for r in roles] == ["member"]
    rid = roles[0]["id"]
    grant = f"/v3/projects/{p['id']}/users/{u['id']}/roles/{rid}"
    env.call("HEAD", grant, adm, 404)
    env.call("PUT", grant, adm, 204)
    env.call("PUT", grant, adm, 204)  # idempotent
    env.call("HEAD", grant, adm, 204)
    assert [
        r["name"] for r in env.call("GET", f"/v3/projects/{p['id']}/users/{u['id']}/roles", adm, 200).json()["roles"]
    ] == ["member"]

    ra = env.call(
        "GET", f"/v3/role_assignments?user.id={u['id']}&scope.project.id={p['id']}&include_names=True", adm, 200
    ).json()["role_assignments"]
    assert ra == [
        {
            "role": {"id": rid, "name": "member"},
            "user": {"id": u["id"], "name": "U", "domain": {"id": "default", "name": "Default"}},
            "scope": {"project": {"id": p["id"], "name": "X", "domain": {"id": "default", "name": "Default"}}},
            "links": {"assignment": f"http://testserver{grant}"},
        }
    ]
    eff = env.call("GET", f"/v3/role_assignments?user.id={u['id']}&effective", adm, 200).json()["role_assignments"]
    assert sorted(a["role"]["id"] for a in eff) == sorted([rid, env.boot["role_ids"]["reader"]])

    # U can now authenticate, sees itself and its project, but is not an admin.
    utok = env.token("U", "P", "X")
    assert env.call("GET", f"/v3/users/{u['id']}", utok, 200).json()["user"]["name"] == "U"
    assert env.call("GET", f"/v3/projects/{p['id']}", utok, 200).json()["project"]["name"] == "X"
    assert [x["name"] for x in env.call("GET", f"/v3/users/{u['id']}/projects", utok, 200).json()["projects"]] == ["X"]
    assert [x["name"] for x in env.call("GET", "/v3/auth/projects", utok, 200).json()["projects"]] == ["X"]
    # No scope -> default project X.
    assert env.auth("U", "P").json()["token"]["project"]["id"] == p["id"]

    # Removing the role revokes U's tokens and stops new ones.
    env.call("DELETE", grant, adm, 204)
    env.call("DELETE", grant, adm, 404)
    env.call("GET", f"/v3/users/{u['id']}", utok, 401)
    env.auth("U", "P", "X", status=401)

    # Password change by the admin and by the user.
    env.call("PUT", grant, adm, 204)
    env.call("PATCH", f"/v3/users/{u['id']}", adm, 200, json={"user": {"password": "P2"}})
    env.auth("U", "P", "X", status=401)
    utok = env.token("U", "P2", "X")
    env.call(
        "POST",
        f"/v3/users/{u['id']}/password",
        utok,
        401,
        json={"user": {"password": "P3", "original_password": "wrong"}},
    )
    env.call(
        "POST", f"/v3/users/{u['id']}/password", utok, 204, json={"user": {"password": "P3", "original_password": "P2"}}
    )
    env.call("GET", f"/v3/users/{u['id']}", utok, 401)
    utok = env.token("U", "P3", "X")

    # Deleting the project revokes tokens scoped to it and the assignments.
    env.call("DELETE", f"/v3/projects/{p['id']}", adm, 204)
    env.call("DELETE", f"/v3/projects/{p['id']}", adm, 404)
    env.call("GET", f"/v3/users/{u['id']}", utok, 401)
    assert env.call("GET", f"/v3/role_assignments?user.id={u['id']}", adm, 200).json()["role_assignments"] == []
    env.call("DELETE", f"/v3/users/{u['id']}", adm, 204)
    env.call("GET", f"/v3/users/{u['id']}", adm, 404)


def test_roles_create_list_delete(env):
    adm = env.admin()
    names = [r["name"] for r in env.call("GET", "/v3/roles", adm, 200).json()["roles"]]
    assert names == ["admin", "manager", "member", "reader", "service"]
    r = env.call("POST", "/v3/roles", adm, 201, json={"role": {"name": "custom"}}).json()["role"]
    assert r["name"] == "custom" and r["domain_id"] is None
    env.call("POST", "/v3/roles", adm, 409, json={"role": {"name": "custom"}})
    env.call("GET", f"/v3/roles/{r['id']}", adm, 200)
    env.call("DELETE", f"/v3/roles/{r['id']}", adm, 204)
    env.call("GET", f"/v3/roles/{r['id']}", adm, 404)
    env.call("DELETE", f"/v3/roles/{r['id']}", adm, 404)
    pid, uid = env.boot["demo_project_id"], env.boot["demo_user_id"]
    for path in (
        f"/v3/projects/{pid}/users/{uid}/roles/nope",
        f"/v3/projects/{pid}/users/nope/roles/{r['id']}",
        f"/v3/projects/nope/users/{uid}/roles/{env.boot['role_ids']['reader']}",
    ):
        assert env.call("PUT", path, adm, 404).json()["error"]["message"].startswith("Could not find ")


def test_disabled_user_and_project(env):
    adm = env.admin()
    demo = env.demo()
    env.call("PATCH", f"/v3/users/{env.boot['demo_user_id']}", adm, 200, json={"user": {"enabled": False}})
    env.call("GET", "/v3/auth/catalog", demo, 401)
    env.auth("demo", env.boot["demo_password"], "demo", status=401)
    env.call("PATCH", f"/v3/users/{env.boot['demo_user_id']}", adm, 200, json={"user": {"enabled": True}})
    demo = env.demo()
    env.call("PATCH", f"/v3/projects/{env.boot['demo_project_id']}", adm, 200, json={"project": {"enabled": False}})
    env.call("GET", "/v3/auth/catalog", demo, 401)
    env.auth("demo", env.boot["demo_password"], "demo", status=401)


def test_member_is_forbidden_admin_operations(env):
    demo = env.demo()
    forbidden = [
        ("GET", "/v3/projects", None),
        ("POST", "/v3/projects", {"project": {"name": "Y"}}),
        ("GET", "/v3/users", None),
        ("POST", "/v3/users", {"user": {"name": "V"}}),
        ("GET", "/v3/roles", None),
        ("POST", "/v3/roles", {"role": {"name": "r"}}),
        ("GET", "/v3/role_assignments", None),
        ("GET", "/v3/endpoints", None),
        ("DELETE", f"/v3/projects/{env.boot['admin_project_id']}", None),
        ("DELETE", f"/v3/users/{env.boot['admin_user_id']}", None),
        ("GET", f"/v3/projects/{env.boot['admin_project_id']}", None),
        ("GET", f"/v3/users/{env.boot['admin_user_id']}", None),
        (
            "PUT",
            f"/v3/projects/{env.boot['demo_project_id']}/users/{env.boot['demo_user_id']}"
            f"/roles/{env.boot['role_ids']['admin']}",
            None,
        ),
    ]
    for method, path, body in forbidden:
        r = env.call(method, path, demo, json=body)
        assert r.status_code == 403, (method, path, r.text)
        err = r.json()["error"]
        assert err["code"] == 403 and err["title"] == "Forbidden"
        assert err["message"].startswith("You are not authorized to perform the requested action: identity:")
    # What a member may do.
    env.call("GET", f"/v3/projects/{env.boot['demo_project_id']}", demo, 200)
    env.call("GET", f"/v3/users/{env.boot['demo_user_id']}", demo, 200)
    env.call("GET", "/v3/domains/default", demo, 200)
    env.call("GET", "/v3/regions", demo, 200)
    # Nothing was created.
    assert [p["name"] for p in env.call("GET", "/v3/projects", env.admin(), 200).json()["projects"]] == [
        "admin",
        "demo",
        "service",
    ]


def test_domains(env):
    tok = env.demo()
    doms = env.call("GET", "/v3/domains", tok, 200).json()["domains"]
    assert [(d["id"], d["name"], d["enabled"]) for d in doms] == [("default", "Default", True)]
    assert env.call("GET", "/v3/domains?name=Default", tok, 200).json()["domains"][0]["id"] == "default"
    assert env.call("GET", "/v3/domains?name=other", tok, 200).json()["domains"] == []
    assert env.call("GET", "/v3/domains/default", tok, 200).json()["domain"]["name"] == "Default"
    env.call("GET", "/v3/domains/Default", tok, 404)
    env.call("POST", "/v3/domains", env.admin(), 501, json={"domain": {"name": "d2"}})
    env.call("POST", "/v3/projects", env.admin(), 404, json={"project": {"name": "Z", "domain_id": "nope"}})


def test_bad_requests(env):
    adm = env.admin()
    env.call("POST", "/v3/projects", adm, 400, json={"project": {}})
    env.call("POST", "/v3/projects", adm, 400, json={"nothing": 1})
    env.call("POST", "/v3/projects", adm, 400, content=b"{bad json")
    env.call("POST", "/v3/projects", adm, 400, json={"project": {"name": "Q", "enabled": "yes"}})
    env.call("POST", "/v3/users", adm, 404, json={"user": {"name": "Q", "default_project_id": "nope"}})

"""Fixtures for the in-process API tests.

``make_api(overrides)`` builds a complete Neutron API (config, a fresh
migrated database, services) behind a Starlette ``TestClient`` whose fake
tokens map to fixed identities:

============  ===========================================  =========
token         roles                                        project
============  ===========================================  =========
admin         admin, manager, member, reader               p-admin
demo          member, reader                               p-demo
other         member, reader                               p-other
reader        reader                                       p-demo
other-reader  reader                                       p-other
service       service                                      p-service
============  ===========================================  =========

Databases: every test starts from an empty, migrated database.  Migrating
costs ~80 ms, so each test module migrates once: on SQLite a template file
that every test copies; on PostgreSQL (when ``NEUTRINO_TEST_PG_URL`` is set)
a database created for the module (dropped afterwards) whose tables are
truncated before each test.  Fixture names are prefixed ``api_`` (besides ``make_api``) so
they cannot clash with tests/conftest.py.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from neutrino import config
from neutrino.api.factory import make_deps, make_network_app
from neutrino.context import AuthInfo
from neutrino.db import tables
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.feed.publisher import open_feed

PG_URL_ENV = "NEUTRINO_TEST_PG_URL"

#: token -> (user id, project id, roles)
IDENTITIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "admin": ("u-admin", "p-admin", ("admin", "manager", "member", "reader")),
    "demo": ("u-demo", "p-demo", ("member", "reader")),
    "other": ("u-other", "p-other", ("member", "reader")),
    "reader": ("u-reader", "p-demo", ("reader",)),
    "other-reader": ("u-other-reader", "p-other", ("reader",)),
    "service": ("u-service", "p-service", ("service",)),
}

#: The configuration every API test starts from (an all-in-one node).
BASE_OVERRIDES: dict[tuple[str, str], str] = dict(config.ALL_IN_ONE)


def validate_token(token: str) -> AuthInfo:
    user, project, roles = IDENTITIES[token]  # KeyError -> 401
    return AuthInfo(user, user, project, project, roles, time.time() + 3600, "audit-" + token)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------
class _TemplateDatabases:
    """Per module: SQLite, one migrated template file that each test copies;
    PostgreSQL, one migrated database whose tables each test truncates."""

    def __init__(self, pg_url: str, directory: Path) -> None:
        self.pg_url = pg_url
        self.directory = directory
        self._admin = None
        self._name = ""
        self.template = self._make_template()

    def _conn(self) -> Any:
        if self._admin is None:
            import psycopg

            self._admin = psycopg.connect(self.pg_url, autocommit=True)
        return self._admin

    def _make_template(self) -> str:
        if self.pg_url:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            self._name = f"nta_{worker}_{uuid.uuid4().hex[:12]}"
            self._conn().execute(f'CREATE DATABASE "{self._name}" TEMPLATE template0 STRATEGY FILE_COPY')
            base, _, _ = self.pg_url.rpartition("/")
            url = f"{base}/{self._name}"
        else:
            url = f"sqlite:///{self.directory / 'template.db'}"
        db = Database(url)
        upgrade(db.engine)
        db.dispose()
        return url

    def clone(self, directory: Path) -> str:
        """A database in the freshly migrated state."""
        if self.pg_url:
            import psycopg

            names = ", ".join(f'"{t.name}"' for t in tables.metadata.sorted_tables)
            with psycopg.connect(self.template, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            return self.template
        target = directory / f"neutrino-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(self.template[len("sqlite:///") :], target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        """Nothing to do per test (the module's database is dropped by ``close``)."""

    def close(self) -> None:
        if self._name:
            self._conn().execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
            self._name = ""
        if self._admin is not None:
            self._admin.close()
            self._admin = None


@pytest.fixture(scope="module")
def api_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TemplateDatabases]:
    dbs = _TemplateDatabases(os.environ.get(PG_URL_ENV, ""), tmp_path_factory.mktemp("apitmpl"))
    yield dbs
    dbs.close()


@pytest.fixture
def api_db_url(api_databases: _TemplateDatabases, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test (SQLite file, or the module's PostgreSQL database emptied)."""
    url = api_databases.clone(tmp_path)
    yield url
    api_databases.drop(url)


# --------------------------------------------------------------------------------------------
# The API under test
# --------------------------------------------------------------------------------------------
class Api:
    """A running in-process API plus helpers for the tests."""

    def __init__(self, cfg: config.Config, db: Database, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.deps = make_deps(cfg, db, rng)
        self.feed = open_feed(db, cfg.feed.retention)  # the change feed, one per process as in neutrino.server
        self.app = make_network_app(self.deps, validate_token, feed=self.feed)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        # One event-loop portal for all requests (a portal per request costs ~10 ms).
        self.client.__enter__()

    # raw requests -----------------------------------------------------------
    def req(
        self,
        method: str,
        path: str,
        as_: str | None = "admin",
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        h = dict(headers or {})
        if as_ is not None:
            h["X-Auth-Token"] = as_
        if path.startswith("http://testserver"):
            path = path[len("http://testserver") :]
        elif not path.startswith("/"):
            path = "/v2.0/" + path
        return self.client.request(method, path, json=json, headers=h, **kw)

    def get(self, path: str, as_: str = "admin", **kw: Any) -> Any:
        return self.req("GET", path, as_, **kw)

    def post(self, path: str, body: Any, as_: str = "admin", **kw: Any) -> Any:
        return self.req("POST", path, as_, json=body, **kw)

    def put(self, path: str, body: Any, as_: str = "admin", **kw: Any) -> Any:
        return self.req("PUT", path, as_, json=body, **kw)

    def delete(self, path: str, as_: str = "admin", **kw: Any) -> Any:
        return self.req("DELETE", path, as_, **kw)

    # checked helpers -----------------------------------------------------------
    def ok(self, resp: Any, status: int = 200) -> Any:
        assert resp.status_code == status, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def create(self, collection: str, key: str, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        return self.ok(self.post(collection, {key: attrs}, as_), 201)[key]

    def network(self, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        return self.create("networks", "network", as_, **attrs)

    def subnet(self, network_id: str, cidr: str, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        attrs.setdefault("ip_version", 6 if ":" in cidr else 4)
        return self.create("subnets", "subnet", as_, network_id=network_id, cidr=cidr, **attrs)

    def port(self, network_id: str, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        return self.create("ports", "port", as_, network_id=network_id, **attrs)

    def sg(self, as_: str = "admin", **attrs: Any) -> dict[str, Any]:
        return self.create("security-groups", "security_group", as_, **attrs)

    def net_with_subnet(
        self, cidr: str = "10.0.0.0/24", as_: str = "demo", **subnet_attrs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        net = self.network(as_)
        return net, self.subnet(net["id"], cidr, as_, **subnet_attrs)

    def show(self, collection: str, key: str, obj_id: str, as_: str = "admin") -> dict[str, Any]:
        return self.ok(self.get(f"{collection}/{obj_id}", as_))[key]

    def list(self, collection: str, as_: str = "admin", query: str = "") -> list[dict[str, Any]]:
        body = self.ok(self.get(f"{collection}{'?' + query if query else ''}", as_))
        return body[collection.replace("-", "_")]

    # state snapshots ("bad input changes nothing") ---------------------------------
    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table (including the change feed), order-independent."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.db.read() as conn:
            for name, table in tables.metadata.tables.items():
                rows = [tuple(repr(v) for v in r) for r in conn.execute(select(table))]
                out[name] = sorted(rows)
        return out

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.db.dispose()


def error(
    resp: Any, status: int, type_: str, message: str | None = None, *, contains: str | None = None
) -> dict[str, Any]:
    """Assert a NeutronError response; returns the error dict."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert err["type"] == type_, err
    assert err["detail"] == "", err
    if message is not None:
        assert err["message"] == message, err
    if contains is not None:
        assert contains in err["message"], err
    return err


@pytest.fixture
def make_api(api_db_url: str, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """``api = make_api({("ml2", "path_mtu"): "9000"}, rng=...)``: build an API (one per test)."""
    made: list[Api] = []

    def make(
        overrides: Mapping[tuple[str, str], str] | None = None,
        *,
        rng: random.Random | None = None,
        db_url: str | None = None,
    ) -> Api:
        cfg = config.defaults(tmp_path).with_overrides({**BASE_OVERRIDES, **(overrides or {})})
        db = Database(db_url or api_db_url)
        api = Api(cfg, db, rng)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """An API with the base (all-in-one) configuration."""
    return make_api()

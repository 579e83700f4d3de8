"""Shared fixtures and test-selection rules.

Markers (declared in pyproject.toml):

* ``root``: needs root; skipped otherwise.
* ``postgres``: needs PostgreSQL; skipped unless NEUTRINO_TEST_PG_URL is set
  (``scripts/pg-test.sh`` starts a throwaway server and sets it).
* ``compat``: runs the real openstack CLI / openstacksdk.

``--pg-pass`` keeps only the tests that exercise the database layer: those
under tests/api and tests/security and those marked ``postgres`` (scripts/test.sh runs them a
second time that way, against PostgreSQL).

Fixtures:

* ``db_url``: a fresh, empty database for one test: a SQLite file in
  ``tmp_path``, or, with NEUTRINO_TEST_PG_URL set, a new database on that
  server, dropped afterwards.
* ``module_db_url``: the same, shared by one test module (for module-scoped
  servers).
* ``make_db_url``: a callable returning another fresh database URL each call
  (dropped at the end of the session).
* ``free_port``: a callable returning a free TCP port on 127.0.0.1, a
  different one on each call within the session.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PG_URL_ENV = "NEUTRINO_TEST_PG_URL"
TESTS = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-pass",
        action="store_true",
        help="run only tests/api, tests/security and tests marked postgres (against $NEUTRINO_TEST_PG_URL)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    have_pg = bool(os.environ.get(PG_URL_ENV))
    db_dirs = (TESTS / "api", TESTS / "security")
    if config.getoption("--pg-pass"):
        keep, drop = [], []
        for item in items:
            parents = Path(str(item.fspath)).parents
            in_db_tier = any(d in parents for d in db_dirs)
            (keep if in_db_tier or item.get_closest_marker("postgres") else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    skip_root = pytest.mark.skip(reason="needs root")
    skip_pg = pytest.mark.skip(reason=f"needs PostgreSQL: run under scripts/pg-test.sh ({PG_URL_ENV})")
    for item in items:
        if not is_root and item.get_closest_marker("root"):
            item.add_marker(skip_root)
        if not have_pg and item.get_closest_marker("postgres"):
            item.add_marker(skip_pg)


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

_handed_out: set[int] = set()


def _free_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``port = free_port()``: a free TCP port on 127.0.0.1 (distinct per call)."""
    return _free_port


# --------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------


class _Databases:
    """Creates fresh databases: SQLite files, or databases on the test PostgreSQL."""

    def __init__(self, pg_url: str, tmp_root: Path) -> None:
        self.pg_url = pg_url
        self.tmp_root = tmp_root
        self._admin = None

    def _conn(self):
        if self._admin is None:
            import psycopg

            self._admin = psycopg.connect(self.pg_url, autocommit=True)
        return self._admin

    def create(self, directory: Path | None = None) -> str:
        if not self.pg_url:
            d = directory or self.tmp_root
            return f"sqlite:///{d / f'neutrino-{uuid.uuid4().hex[:8]}.db'}"
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"nt_{worker}_{uuid.uuid4().hex[:10]}"
        # template0 + FILE_COPY: about 50 ms for create and drop with fsync off.
        self._conn().execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        base, _, _ = self.pg_url.rpartition("/")
        return f"{base}/{name}"

    def drop(self, url: str) -> None:
        if not self.pg_url or not url.startswith("postgresql"):
            return
        name = url.rpartition("/")[2].split("?", 1)[0]
        self._conn().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Databases]:
    dbs = _Databases(os.environ.get(PG_URL_ENV, ""), tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def make_db_url(_databases: _Databases) -> Iterator[Callable[[], str]]:
    """``url = make_db_url()``: another fresh database (dropped at session end)."""
    made: list[str] = []

    def make() -> str:
        url = _databases.create()
        made.append(url)
        return url

    yield make
    for url in made:
        _databases.drop(url)


@pytest.fixture
def db_url(_databases: _Databases, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test (SQLite file, or PostgreSQL database)."""
    url = _databases.create(tmp_path)
    yield url
    _databases.drop(url)


@pytest.fixture(scope="module")
def module_db_url(_databases: _Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database shared by the tests of one module."""
    url = _databases.create(tmp_path_factory.mktemp("moddb"))
    yield url
    _databases.drop(url)

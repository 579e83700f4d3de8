"""The shared fixtures of tests/conftest.py (db_url, module_db_url, free_port)."""

from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy import create_engine, inspect, text

PG = bool(os.environ.get("NEUTRINO_TEST_PG_URL"))


def _engine(url: str):
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url)


def _roundtrip(url: str) -> None:
    eng = _engine(url)
    try:
        assert inspect(eng).get_table_names() == []  # fresh and empty
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (42)"))
        with eng.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalar() == 42
    finally:
        eng.dispose()


def test_db_url_is_fresh(db_url: str) -> None:
    assert db_url.startswith("postgresql://" if PG else "sqlite:///")
    _roundtrip(db_url)


def test_db_url_is_fresh_again(db_url: str) -> None:
    _roundtrip(db_url)  # the table of the test before is not there


def test_make_db_url_gives_distinct_databases(make_db_url) -> None:
    a, b = make_db_url(), make_db_url()
    assert a != b
    _roundtrip(a)
    _roundtrip(b)


def test_module_db_url(module_db_url: str) -> None:
    eng = _engine(module_db_url)
    try:
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS m (x INTEGER)"))
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_postgres_databases(db_url: str, module_db_url: str, make_db_url) -> None:
    import psycopg

    assert db_url.startswith("postgresql://") and module_db_url.startswith("postgresql://")
    _roundtrip(db_url)
    url = make_db_url()
    name = url.rpartition("/")[2]
    _roundtrip(url)
    with psycopg.connect(os.environ["NEUTRINO_TEST_PG_URL"], autocommit=True) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        # db_url/module_db_url drop with FORCE: open connections do not block it.
        held = psycopg.connect(url)
        try:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            held.close()
        assert not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def test_free_port(free_port) -> None:
    ports = {free_port() for _ in range(5)}
    assert len(ports) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

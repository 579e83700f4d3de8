"""Engines and units of work.

``Database`` owns one SQLAlchemy engine.  All writes go through
``Database.write()``, a unit of work that

* on SQLite begins with ``BEGIN IMMEDIATE`` so writers queue on the database
  lock instead of failing on lock upgrade (several server processes can share
  one SQLite file);
* collects change-feed entries (``uow.changed(...)``) and inserts them as the
  last statement before commit, under a PostgreSQL transaction advisory lock,
  so feed revisions are assigned in commit order (a reader that saw revision
  R can never later see a smaller one appear);
* is retried whole (``run_write``) when the database reports a race: a unique
  violation on a randomly chosen value, a serialization failure or deadlock.

Readers use ``Database.read()``: a plain connection, no lock.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from neutrino.db import tables
from neutrino.timeutil import now_iso

LOG = logging.getLogger(__name__)
T = TypeVar("T")

#: Key of the PostgreSQL advisory lock that orders change-feed commits.
FEED_LOCK_KEY = 0x6E657574  # "neut"


class RetryRequest(Exception):
    """Raised inside a unit of work to ask ``run_write`` for another attempt."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Build an engine for ``url`` with our connection settings."""
    if url.startswith("sqlite"):
        eng = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=16,
        )

        @event.listens_for(eng, "connect")
        def _on_connect(dbapi_conn, _rec):
            # Take over transaction control from pysqlite so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(eng, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return eng
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=16,
        pool_pre_ping=True,
    )


@dataclass
class Change:
    resource: str
    resource_id: str
    action: str  # create | update | delete
    project_id: str
    body: Mapping[str, Any] | None  # a service's typed view (stored as JSON)


@dataclass
class UnitOfWork:
    """One write transaction.  ``conn`` is the connection to use."""

    conn: Connection
    changes: list[Change] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def changed(
        self, resource: str, resource_id: str, action: str, body: Mapping[str, Any] | None, project_id: str = ""
    ) -> None:
        """Record a change for the feed (written at commit, in commit order)."""
        self.changes.append(Change(resource, resource_id, action, project_id, body))


class Database:
    """Owns the engine; hands out units of work and read connections."""

    def __init__(self, url: str, *, on_commit: Callable[[int], None] | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._on_commit = on_commit
        # SQLite admits one writer; queueing this process's writers on a lock is
        # fair and immediate, where SQLite's busy handler sleeps in growing steps
        # (long tails under concurrency).  Other processes still wait on the
        # database lock itself (busy_timeout).
        self._write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    def set_commit_listener(self, fn: Callable[[int], None]) -> None:
        self._on_commit = fn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """A write transaction; commits on normal exit, rolls back on error."""
        with self._write_lock, self.engine.connect() as raw:
            conn = raw.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else raw
            with conn.begin():
                uow = UnitOfWork(conn)
                yield uow
                last = self._flush_changes(uow)
        if last is not None and self._on_commit is not None:
            self._on_commit(last)
        for fn in uow.after_commit:
            fn()

    def _flush_changes(self, uow: UnitOfWork) -> int | None:
        if not uow.changes:
            return None
        if self.is_postgres:
            uow.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_KEY})
        ts = now_iso()
        last = None
        for ch in uow.changes:
            res = uow.conn.execute(
                insert(tables.changes).values(
                    resource=ch.resource,
                    resource_id=ch.resource_id,
                    action=ch.action,
                    project_id=ch.project_id or "",
                    body=ch.body,
                    created_at=ts,
                )
            )
            key = res.inserted_primary_key
            if key is None:  # typed optional by SQLAlchemy; a one-row INSERT always has its key
                raise RuntimeError("the change feed INSERT returned no primary key")
            last = key[0]
        return last

    def run_write(self, fn: Callable[[UnitOfWork], T], *, attempts: int = 12) -> T:
        """Run ``fn`` in a unit of work, retrying the whole unit on races.

        ``fn`` must be safe to re-run: it may not have effects outside the
        transaction.  Domain errors raised by ``fn`` propagate immediately.
        """
        for attempt in range(attempts):
            try:
                with self.write() as uow:
                    return fn(uow)
            except (IntegrityError, RetryRequest) as exc:
                if attempt == attempts - 1:
                    raise
                LOG.debug("write raced (%s); retrying", exc)
            except (OperationalError, DBAPIError) as exc:
                if not _is_transient(exc) or attempt == attempts - 1:
                    raise
                LOG.debug("transient database error (%s); retrying", exc)
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    msg = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    code = getattr(exc.orig, "sqlstate", None)
    return (
        code in ("40001", "40P01") or "database is locked" in msg or "deadlock" in msg or "could not serialize" in msg
    )

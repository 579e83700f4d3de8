"""The change log on the database side: reading it, snapshot reads, compaction.

Writers append to table ``changes`` through ``UnitOfWork.changed`` (see
``neutrino.db.engine``); revisions are assigned in commit order, so a reader
that has seen revision R never later sees a revision <= R appear.  Revisions
are increasing but not necessarily contiguous (a PostgreSQL sequence skips
values on rollback).

Retention: ``compact`` keeps the newest ``retention`` rows (at least one, so
SQLite never reuses a deleted row id for a new revision).  A reader asking for
changes after R where R + 1 may have been deleted gets ``ChangesGone`` (410):
it must take a snapshot.  The test is conservative: ``since < oldest - 1``
is "gone" even if the missing revisions were merely sequence gaps.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.db import tables as t
from neutrino.db.engine import Database

LOG = logging.getLogger(__name__)

#: Largest ``limit`` a changes read accepts.
MAX_LIMIT = 10000


class ChangesGone(errors.NeutronException):
    """The requested revision is no longer (or not yet) in the log: take a snapshot."""

    status = 410
    message = (
        "Changes since revision %(since)s are not available (retained revisions: "
        "%(oldest)s to %(latest)s); take a snapshot."
    )


@contextlib.contextmanager
def snapshot_read(db: Database) -> Iterator[Connection]:
    """A read transaction whose statements all see one snapshot.

    SQLite: a deferred transaction in WAL mode keeps the snapshot of its
    first read.  PostgreSQL: REPEATABLE READ (READ COMMITTED, the default,
    takes a new snapshot per statement).
    """
    with db.engine.connect() as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ") if db.is_postgres else raw
        with conn.begin():
            yield conn


def latest_revision(conn: Connection) -> int:
    """The newest committed revision, 0 for an empty log."""
    return conn.execute(select(func.max(t.changes.c.revision))).scalar() or 0


def bounds(conn: Connection) -> tuple[int, int]:
    """(oldest, latest) retained revisions; (0, 0) for an empty log."""
    row = conn.execute(select(func.min(t.changes.c.revision), func.max(t.changes.c.revision))).one()
    return (row[0] or 0, row[1] or 0)


def _change_dict(row: Any) -> dict[str, Any]:
    return {
        "revision": row.revision,
        "resource": row.resource,
        "id": row.resource_id,
        "action": row.action,
        "project_id": row.project_id,
        "body": row.body,
    }


def read_changes(
    conn: Connection, since: int, limit: int, keep: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Changes with revision > ``since``, oldest first, at most ``limit`` examined.

    Returns ``(revision, changes)``: ``revision`` is the last revision
    examined (``since`` if none), so a caller filtering with ``keep`` still
    advances past changes it skipped.  Raises ``ChangesGone`` when revisions
    after ``since`` may have been compacted away, or when ``since`` is newer
    than anything in the log (a database that was reset).
    """
    oldest, latest = bounds(conn)
    if since > latest or (oldest and since < oldest - 1):
        raise ChangesGone(since=since, oldest=oldest, latest=latest)
    rows = conn.execute(
        select(t.changes).where(t.changes.c.revision > since).order_by(t.changes.c.revision).limit(limit)
    ).all()
    out = [_change_dict(r) for r in rows]
    if keep is not None:
        out = [c for c in out if keep(c)]
    return (rows[-1].revision if rows else since), out


def compact(db: Database, retention: int) -> int:
    """Delete all but the newest ``retention`` (>= 1) rows; returns how many went.

    Its own short write transaction; records no feed change.
    """
    retention = max(1, retention)
    with db.write() as uow:
        latest = latest_revision(uow.conn)
        cutoff = latest - retention
        if cutoff <= 0:
            return 0
        # Counting by revision keeps at most ``retention`` rows (fewer if the
        # sequence has gaps), and the newest row always stays.
        res = uow.conn.execute(delete(t.changes).where(t.changes.c.revision <= cutoff))
        return res.rowcount or 0


class Compactor:
    """Runs ``compact`` at most once per ``interval`` seconds, one thread at a time.

    ``maybe_run`` is cheap when not due; it is meant to be called after
    commits (from any thread).  Errors are swallowed: compaction is retried
    on a later commit.
    """

    def __init__(
        self, db: Database, retention: int, *, interval: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self._next = clock() + interval
        self._lock = threading.Lock()

    def maybe_run(self) -> int:
        now = self.clock()
        if now < self._next or not self._lock.acquire(blocking=False):
            return 0
        try:
            self._next = now + self.interval
            return compact(self.db, self.retention)
        except Exception:
            LOG.warning("change-log compaction failed; will retry", exc_info=True)
            return 0
        finally:
            self._lock.release()


__all__ = [
    "MAX_LIMIT",
    "ChangesGone",
    "Compactor",
    "bounds",
    "compact",
    "latest_revision",
    "read_changes",
    "snapshot_read",
]

"""The server side of the change feed, without HTTP: snapshot sources, commit wake-ups, compaction.

``open_feed(db, retention)`` is the one constructor: ``neutrino.server``
builds one ``Feed`` per process and hands it to whoever publishes into it
(``neutrino.api.factory`` registers the network services' snapshot sources
and the schedulers' ``dhcp_binding``/``l3_binding``; ``neutrino.compute.app``
registers ``server``).  ``neutrino.feed.routes`` serves it over HTTP.

This module imports no service and no HTTP module: publishers hand it plain
functions ``fn(connection) -> [admin-view dict, ...]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from neutrino.db.engine import Database
from neutrino.feed import log
from neutrino.feed.resources import PLURAL
from neutrino.feed.signal import CommitSignal

#: A snapshot source: every object of one feed type, read on the given connection.
Source = Callable[[Connection], list[dict[str, Any]]]


@dataclass
class Feed:
    """One process's change feed: its database, commit signal, compactor and snapshot sources."""

    db: Database
    signal: CommitSignal = field(default_factory=CommitSignal)
    compactor: log.Compactor | None = None
    poll_interval: float = 1.0
    #: Feed resource type -> its snapshot source, in registration order (the
    #: order of a snapshot's ``resources`` when the client names none).
    sources: dict[str, Source] = field(default_factory=dict)

    def add_source(self, name: str, source: Source) -> None:
        """Make ``name`` a snapshot type, listed by ``source`` (replaces an earlier source of that type)."""
        self.sources[name] = source

    def types(self) -> list[str]:
        """The snapshot types, in registration order."""
        return list(self.sources)

    def on_commit(self, revision: int) -> None:
        """Commit listener (any thread): wake long-polls, maybe compact."""
        self.signal.notify(revision)
        if self.compactor is not None:
            self.compactor.maybe_run()

    # --- snapshot -------------------------------------------------------------------
    def snapshot(self, types: list[str]) -> dict[str, Any]:
        """Blocking: R and the objects of ``types`` (registered types), all from one database snapshot."""
        with log.snapshot_read(self.db) as conn:
            revision = log.latest_revision(conn)
            resources = {PLURAL[name]: self.sources[name](conn) for name in types}
        return {"revision": revision, "resources": resources}

    # --- changes --------------------------------------------------------------------------
    def read_changes(self, since: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Blocking: one read of the log (raises ``ChangesGone``)."""
        with self.db.read() as conn:
            return log.read_changes(conn, since, limit)

    async def wait_changes(self, since: int, timeout: float, limit: int) -> dict[str, Any]:
        """Long-poll: return as soon as there is something after ``since`` or at ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            generation = self.signal.generation
            revision, changes = await run_in_threadpool(self.read_changes, since, limit)
            remaining = deadline - loop.time()
            if changes or revision != since or remaining <= 0:
                return {"revision": revision, "changes": changes}
            await self.signal.wait(generation, min(self.poll_interval, remaining))


def open_feed(db: Database, retention: int, *, compact_interval: float = 30.0) -> Feed:
    """A feed on ``db`` that is its commit listener, compacting the log down to ``retention``.

    The listener (``Feed.on_commit``) may run a compaction, itself a write:
    ``Database`` calls listeners after the committing unit has released its
    connection and write lock.
    """
    feed = Feed(db, compactor=log.Compactor(db, retention, interval=compact_interval))
    db.set_commit_listener(feed.on_commit)
    return feed


__all__ = ["Feed", "Source", "open_feed"]

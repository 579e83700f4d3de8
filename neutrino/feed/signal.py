"""A thread-safe "new commit" signal that asyncio long-pollers wait on.

``Database`` calls its commit listener from whatever thread committed
(usually a threadpool worker).  ``CommitSignal.notify`` may be called from
any thread; waiters are woken on their own event loop through
``loop.call_soon_threadsafe``.  A generation counter closes the race
between "checked the database" and "started waiting": read ``generation``
before the check and pass it to ``wait``, which returns at once if a commit
happened in between.
"""

from __future__ import annotations

import asyncio
import threading


class CommitSignal:
    """Wakes asyncio waiters when this process commits a change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self.last_revision = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self, revision: int) -> None:
        """Record a commit up to ``revision`` and wake every waiter (any thread)."""
        with self._lock:
            self._generation += 1
            self.last_revision = max(self.last_revision, revision)
            waiters, self._waiters = self._waiters, set()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that loop is closed; its waiter is gone
                pass

    async def wait(self, generation: int, timeout: float) -> bool:
        """Wait until a commit after ``generation`` or ``timeout`` seconds; True if one came."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        with self._lock:
            if self._generation != generation:
                return True
            self._waiters.add(entry)
        try:
            await asyncio.wait({fut}, timeout=max(0.0, timeout))
        finally:
            with self._lock:
                self._waiters.discard(entry)
        return fut.done()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


__all__ = ["CommitSignal"]

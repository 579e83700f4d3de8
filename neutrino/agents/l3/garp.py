"""Gratuitous ARPs in the background, for the L3 agent.

Each ``arping`` takes about a second and only speeds up neighbours' caches, so a pass
queues its GARPs here and does not wait for them (``GarpSender.wait`` is for tests).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)
#: ``arping`` processes at the same time (gratuitous ARPs are sent in the background).
GARP_WORKERS = 32


class GarpSender:
    """Gratuitous ARPs in the background: a queue and up to ``GARP_WORKERS`` daemon threads
    (started on demand; daemons, so a stopping agent never waits for them), each GARP sent
    by ``garp(device, ip, namespace)`` (``Host.garp``)."""

    def __init__(self, garp: Callable[[str, str, str], None], workers: int = GARP_WORKERS) -> None:
        self.garp = garp
        self.workers = workers
        self.queue: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.pending = 0
        self.idle = threading.Condition(self.lock)

    def send(self, device: str, ip: str, ns: str) -> None:
        with self.lock:
            self.pending += 1
            if len(self.threads) < min(self.workers, self.pending):
                th = threading.Thread(target=self._run, name=f"garp-{len(self.threads)}", daemon=True)
                self.threads.append(th)
                th.start()
        self.queue.put((device, ip, ns))

    def _run(self) -> None:
        while True:
            device, ip, ns = self.queue.get()
            try:
                self.garp(device, ip, ns)
            except Exception as exc:  # noqa: BLE001 - a missed GARP only delays neighbours' ARP
                LOG.debug("garp %s on %s failed: %s", ip, device, exc)
            finally:
                with self.lock:
                    self.pending -= 1
                    if not self.pending:
                        self.idle.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued GARP was sent; False on timeout."""
        with self.lock:
            return self.idle.wait_for(lambda: not self.pending, timeout)


__all__ = ["GARP_WORKERS", "GarpSender"]

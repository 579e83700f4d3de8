"""Applying one pass's ops for many namespaces at once.

``parallel`` maps a function over items on up to ``WORKERS`` threads (agents observe and
apply per namespace: the work is external commands, which overlap well even on few CPUs).
``apply_grouped`` (the DHCP agent's executor): each namespace's ops keep their planned
order; namespaces run in parallel, the ones being torn down first (as planned).  A failure
in one namespace is logged, ends that namespace's ops for the pass (the next ones were
planned to follow it) and is returned; it never stops the others (the next pass retries).
The L3 agent has its own executor (shared steps for all routers, then ``parallel``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

LOG = logging.getLogger(__name__)
WORKERS = 16
T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


def parallel(fn: Callable[[T], R], items: Sequence[T], *, name: str = "agent") -> list[R]:
    """``[fn(x) for x in items]`` on up to ``WORKERS`` threads (inline for one item)."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items)), thread_name_prefix=name) as pool:
        return list(pool.map(fn, items))


def apply_grouped(
    ops: Sequence[Any],
    *,
    key: Callable[[Any], K],
    apply: Callable[[Any], None],
    is_teardown: Callable[[Any], bool],
    creates_namespace: Callable[[Any], bool],
    netns_dir_mounted: Callable[[], bool],
    what: str,
) -> dict[K, str]:
    """Apply ``ops`` grouped by ``key`` (one group per namespace), as described above.
    ``netns_dir_mounted`` is ``Host.netns_dir_mounted``.  Returns key -> what failed, for the
    groups where an op failed."""
    groups: dict[K, list[Any]] = {}
    for op in ops:
        groups.setdefault(key(op), []).append(op)
    failed: dict[K, str] = {}

    def run_group(group: list[Any]) -> None:
        for op in group:
            try:
                apply(op)
            except Exception as exc:  # noqa: BLE001 - one namespace's failure must not stop the others
                LOG.warning("%s for %s %s failed: %s", type(op).__name__, what, key(op), exc)
                failed[key(op)] = f"{type(op).__name__} failed: {str(exc)[:200]}"
                return

    teardown = [g for g in groups.values() if any(is_teardown(op) for op in g)]
    rest = [g for g in groups.values() if not any(is_teardown(op) for op in g)]
    if len(rest) > 1 and not netns_dir_mounted():
        # The first `ip netns add` on a host makes /run/netns a shared mount point; let
        # one namespace do that alone rather than several at once.
        first = next((g for g in rest if any(creates_namespace(op) for op in g)), None)
        if first is not None:
            run_group(first)
            rest = [g for g in rest if g is not first]
    for phase in (teardown, rest):
        parallel(run_group, phase, name=what)
    return failed

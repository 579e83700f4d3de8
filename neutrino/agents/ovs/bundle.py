"""One bundle per bridge: what it changes, and why the switch refused one (pure).

``flow_changes`` gives the additions and deletions that take a bridge to exactly the
planned flows, against the agent's memory of its last bundle or against a dump;
``rejection`` words a refused bundle for the agent's report.
"""

from __future__ import annotations

from collections.abc import Iterable

from neutrino.agents.ovs.model import FlowSpec
from neutrino.agents.ovs.tables import LEARNED_FLOW_COOKIE


def flow_changes(
    want: frozenset[FlowSpec],
    have: frozenset[FlowSpec] | None = None,
    dumped: Iterable[tuple[FlowSpec, int]] | None = None,
    *,
    cookie: int = 0,
) -> tuple[frozenset[FlowSpec], list[FlowSpec]]:
    """(to add with ``cookie``, to delete) taking a bridge to exactly ``want`` (pure).

    Either ``have``: the flows the bridge holds, all with ``cookie`` (the
    agent's memory of its last bundle), or ``dumped``: (flow, cookie) of every
    flow it holds.  An add replaces the flow of the same (table, priority,
    match) whatever its actions and cookie, so only flows whose match is no
    longer wanted are deleted; flows learned by br-tun (their own cookie) are
    left alone.
    """
    if dumped is None:
        assert have is not None
        add = want - have
        gone = have - want
        if add and gone:
            keys = {f[1:4] for f in add}
            return add, [f for f in gone if f[1:4] not in keys]
        return add, list(gone)
    dumped = list(dumped)
    add = want - {f for f, c in dumped if c == cookie}
    keys = {f[1:4] for f in want}
    return add, [f for f, c in dumped if c != LEARNED_FLOW_COOKIE and f[1:4] not in keys]


def rejection(err: Exception) -> str:
    """Why a port's flows were rejected, for the report (the tool's first error line, bounded)."""
    lines = [x.strip() for x in str(getattr(err, "stderr", "") or err).splitlines() if x.strip()]
    detail = lines[0] if lines else type(err).__name__
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return f"flows rejected by the switch ({detail})"


__all__ = ["flow_changes", "rejection"]

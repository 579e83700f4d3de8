"""OpenFlow helpers only tests use: ovs-ofctl input syntax for ``Flow`` values, flow-set
comparison, and ``OpenFlowTool`` (the runner plus whole-table writes, cookie swaps, traces).

The product writes bundles from canonical flows (``oftext.canonical_bundle_text``
via ``OpenFlow.apply_canonical``); tests build ``Flow`` values by hand, written
the way a person would (``parse_flow_mod``), and install or compare them with
the helpers here.  Pure text functions first, then the runner subclass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from neutrino.system.oftext import DEFAULT_PRIORITY, FLAG_WORDS, Flow, one_line_each, split_fields
from neutrino.system.openflow import OpenFlow

_MOD_INT_KEYS = ("table", "priority", "idle_timeout", "hard_timeout", "importance")


def parse_flow_mod(text: str) -> Flow:
    """A flow in ovs-ofctl's input syntax (``table=0,priority=1,in_port=1 actions=drop``,
    fields in any order) -> ``Flow``.  The inverse of ``flow_mod_text``."""
    idx = text.find("actions=")
    if idx < 0:
        raise ValueError(f"flow without actions: {text!r}")
    head, actions = text[:idx], text[idx + len("actions=") :]
    ints = {"table": 0, "priority": DEFAULT_PRIORITY, "idle_timeout": 0, "hard_timeout": 0, "importance": 0}
    cookie, flags, match = 0, [], []
    for tok in split_fields(re.sub(r"\s+", ",", head.strip())):
        key, sep, value = tok.partition("=")
        if sep and key in _MOD_INT_KEYS:
            ints[key] = int(value, 0)
        elif sep and key == "cookie":
            cookie = int(value.split("/")[0], 0)
        elif not sep and key in FLAG_WORDS:
            flags.append(key)
        else:
            match.append(tok)
    return Flow(
        table=ints["table"],
        priority=ints["priority"],
        match=",".join(match),
        actions=actions.strip(),
        cookie=cookie,
        idle_timeout=ints["idle_timeout"],
        hard_timeout=ints["hard_timeout"],
        importance=ints["importance"],
        flags=tuple(flags),
    )


def flow_mod_text(flow: Flow, *, with_actions: bool = True) -> str:
    """``flow`` in ovs-ofctl's flow syntax (``add-flow``/``add-flows``)."""
    parts = [f"cookie={flow.cookie:#x}", f"table={flow.table}"]
    if flow.idle_timeout:
        parts.append(f"idle_timeout={flow.idle_timeout}")
    if flow.hard_timeout:
        parts.append(f"hard_timeout={flow.hard_timeout}")
    parts += list(flow.flags)
    if flow.importance:
        parts.append(f"importance={flow.importance}")
    parts.append(f"priority={flow.priority}")
    if flow.match:
        parts.append(flow.match)
    text = ",".join(parts)
    return f"{text},actions={flow.actions}" if with_actions else text


def _strict_spec(flow: Flow) -> str:
    parts = [f"table={flow.table}", f"priority={flow.priority}"]
    if flow.match:
        parts.append(flow.match)
    return ",".join(parts)


def delete_strict_text(flow: Flow, *, match_cookie: bool = False) -> str:
    """A ``delete_strict`` bundle line removing exactly ``flow``'s (table, priority, match);
    with ``match_cookie`` only if it still carries ``flow.cookie``."""
    cookie = f"cookie={flow.cookie:#x}/-1," if match_cookie else ""
    return f"delete_strict {cookie}{_strict_spec(flow)}"


def bundle_text(add: Iterable[Flow] = (), delete: Iterable[Flow] = (), delete_cookies: Iterable[int] = ()) -> str:
    """The ``--bundle add-flows`` input: deletions first, then additions (pure)."""
    lines = [f"delete cookie={c:#x}/-1" for c in delete_cookies]
    lines += [delete_strict_text(f) for f in delete]
    lines += ["add " + flow_mod_text(f) for f in add]
    return one_line_each("".join(line + "\n" for line in lines), len(lines))


def sort_flows(flows: Iterable[Flow]) -> list[Flow]:
    """Table ascending, priority descending, then match: a stable, readable order."""
    return sorted(flows, key=lambda f: (f.table, -f.priority, f.match, f.actions, f.cookie))


def diff(desired: Iterable[Flow], observed: Iterable[Flow]) -> tuple[list[Flow], list[Flow]]:
    """(to_add, to_delete) taking ``observed`` to ``desired`` (pure; by full equality,
    so a changed action or cookie is an add that replaces the old flow)."""
    want = {f.key: f for f in desired}
    have = {f.key: f for f in observed}
    add = [f for k, f in want.items() if have.get(k) != f]
    delete = [f for k, f in have.items() if k not in want]
    return sort_flows(add), sort_flows(delete)


@dataclass(frozen=True)
class Trace:
    """An ``ofproto/trace`` result: its full text and the datapath actions it ends with."""

    text: str
    datapath_actions: str  # the final "Datapath actions: ..." value ("drop" if none)


class OpenFlowTool(OpenFlow):
    """``OpenFlow`` plus the writes and diagnostics only tests need (same ``Ovs`` handle)."""

    def apply(self, bridge: str, add: Iterable[Flow] = (), delete: Iterable[Flow] = ()) -> None:
        """Delete then add flows in ONE bundle (all or nothing).

        ``delete`` removes by (table, priority, match), whatever the cookie; an
        ``add`` of an existing (table, priority, match) replaces its actions and
        cookie.  Raises ``FlowSyntaxError`` / ``FlowRejected``; then nothing changed.
        """
        self._bundle(bridge, bundle_text(add=add, delete=delete))

    def replace_cookie_flows(self, bridge: str, cookie: int, flows: Iterable[Flow]) -> None:
        """Atomically make the flows carrying ``cookie`` exactly ``flows`` (re-cookied)."""
        self._bundle(bridge, bundle_text(add=[f.with_cookie(cookie) for f in flows], delete_cookies=[cookie]))

    def delete_flows_except_cookie(self, bridge: str, cookie: int, keep: Iterable[int] = ()) -> list[Flow]:
        """Delete every flow whose cookie is not ``cookie`` (nor in ``keep``): post-resync
        cleanup of stale flows.  One bundle; returns the deleted flows."""
        keep_set = {cookie, *keep}
        stale = [f for f in self.dump(bridge) if f.cookie not in keep_set]
        if stale:
            self._bundle(bridge, "".join(delete_strict_text(f, match_cookie=True) + "\n" for f in stale))
        return stale

    def replace_flows(self, bridge: str, flows: Iterable[Flow]) -> None:
        """Make ``bridge``'s whole flow table exactly ``flows`` (``--bundle replace-flows``)."""
        text = "".join(flow_mod_text(f) + "\n" for f in flows)
        self.ovs.run(self.ofctl_argv("replace-flows", bridge, "-", bundle=True), input=text)

    def delete_all(self, bridge: str) -> None:
        self.ovs.run(self.ofctl_argv("del-flows", bridge, bundle=True))

    def trace(self, bridge: str, flow: str) -> Trace:
        """``ofproto/trace BRIDGE FLOW`` (e.g. ``in_port=2,dl_src=..,dl_dst=..``): how
        a packet would be handled.  For diagnostics and tests."""
        text = self.ovs.appctl("ofproto/trace", bridge, flow)
        actions = "drop"
        for line in text.splitlines():
            if line.startswith("Datapath actions:"):
                actions = line.split(":", 1)[1].strip()
        return Trace(text=text, datapath_actions=actions)


__all__ = [
    "OpenFlowTool",
    "Trace",
    "bundle_text",
    "delete_strict_text",
    "diff",
    "flow_mod_text",
    "parse_flow_mod",
    "sort_flows",
]

"""Driving OpenFlow (ovs-ofctl / ovs-appctl): dumps and atomic bundles on one OVS instance.

``OpenFlow(ovs)`` drives one OVS instance's bridges.  Every change set goes
through ``ovs-ofctl --bundle`` (an OpenFlow bundle: the switch applies all
flow mods or none; a flow the switch rejects leaves the tables unchanged).

The text it writes and reads is ``neutrino.system.oftext`` (pure): the agent
applies flows whose match is already canonical with ``apply_canonical`` and
reads tables back with ``dump_entries`` (the fast path, ~50k flows on a busy
br-int) or ``dump`` (``Flow`` values).  Whole-table writes, cookie swaps and
``ofproto/trace`` only tests use: ``neutrino.testing.openflow.OpenFlowTool``.
"""

from __future__ import annotations

from collections.abc import Iterable

from neutrino.system.oftext import DumpedFlow, Flow, FlowText, canonical_bundle_text, dump_entries, parse_dump
from neutrino.system.ovsdb import Ovs

PROTOCOL = "OpenFlow13"
#: Extra ``--timeout`` a bundle gets per flow mod it carries.
BUNDLE_SECONDS_PER_FLOW = 0.002


class OpenFlow:
    """Flow tables of the bridges of one OVS instance (``Ovs`` handle)."""

    def __init__(self, ovs: Ovs, *, protocol: str = PROTOCOL) -> None:
        self.ovs = ovs
        self.protocol = protocol

    def ofctl_argv(
        self,
        command: str,
        bridge: str,
        *args: str,
        bundle: bool = False,
        names: bool = False,
        timeout: float | None = None,
    ) -> list[str]:
        t = self.ovs.timeout if timeout is None else timeout
        argv = ["ovs-ofctl", "-O", self.protocol, f"--timeout={int(t)}"]
        if bundle:
            argv.append("--bundle")
        argv += [command]
        if command.startswith("dump-"):
            argv += ["--no-stats", "--names" if names else "--no-names"]
        return argv + [self.ovs.mgmt(bridge), *args]

    def dump(
        self, bridge: str, *, table: int | None = None, cookie: int | None = None, names: bool = False
    ) -> list[Flow]:
        """Current flows of ``bridge`` (``names`` prints port names instead of ofports)."""
        spec = []
        if table is not None:
            spec.append(f"table={table}")
        if cookie is not None:
            spec.append(f"cookie={cookie:#x}/-1")
        argv = self.ofctl_argv("dump-flows", bridge, *([",".join(spec)] if spec else []), names=names)
        return parse_dump(self.ovs.run(argv).stdout)

    def apply_canonical(
        self, bridge: str, cookie: int, add: Iterable[FlowText] = (), delete: Iterable[FlowText] = ()
    ) -> None:
        """Delete then add flows already in canonical form (``canonical_bundle_text``) in ONE
        bundle, additions carrying ``cookie``: all or nothing.  ``delete`` removes by (table,
        priority, match), whatever the cookie; an ``add`` of an existing (table, priority,
        match) replaces its actions and cookie.  Raises ``UnsafeFlowText`` (before running
        anything), ``FlowSyntaxError`` or ``FlowRejected``; then nothing changed."""
        self._bundle(bridge, canonical_bundle_text(cookie, add, delete))

    def dump_entries(self, bridge: str) -> list[DumpedFlow]:
        """Every flow of ``bridge`` as ``DumpedFlow`` (``dump_entries``): the fast dump."""
        return dump_entries(self.ovs.run(self.ofctl_argv("dump-flows", bridge)).stdout)

    def _bundle(self, bridge: str, text: str) -> None:
        if text:
            # ovs-vswitchd needs ~0.1-0.5 ms per flow mod (more with conjunctions, on a
            # busy machine): a resync of a big br-int must not hit the plain timeout.
            timeout = self.ovs.timeout + text.count("\n") * BUNDLE_SECONDS_PER_FLOW
            self.ovs.run(
                self.ofctl_argv("add-flows", bridge, "-", bundle=True, timeout=timeout), input=text, timeout=timeout + 5
            )


__all__ = ["BUNDLE_SECONDS_PER_FLOW", "OpenFlow", "PROTOCOL"]

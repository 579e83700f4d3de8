"""Errors raised by the host adapters in ``neutrino.system``.

Every adapter runs tools through ``neutrino.system.exec.run``; a failure is
translated there, once, by ``translate()`` (exit code + stderr pattern ->
class).  Callers catch the specific class they can handle (for instance an
idempotent ``remove_*`` swallows ``DeviceNotFound``) and let the rest travel.

Tree::

    HostError                       anything that went wrong touching the host
     ├── CommandNotFound(argv)      the executable is not installed
     ├── CommandTimeout(argv, timeout)
     ├── ProcessError(msg)          a daemon did not start / left no pidfile
     └── CommandFailed(argv, rc, stderr, stdout)
          ├── NamespaceNotFound     "Cannot open network namespace "x""
          ├── NamespaceExists       "Cannot create namespace file ...: File exists"
          ├── DeviceNotFound        "Cannot find device", "no device matches name"
          ├── DeviceExists          "RTNETLINK answers: File exists" (link add)
          ├── AddressExists         "Address already assigned"
          ├── OvsdbError            any ovs-vsctl failure
          │    ├── OvsdbUnreachable "database connection failed"
          │    ├── BridgeNotFound   "no bridge named x"
          │    ├── PortNotFound     "no port named x", no row "x" in table Port
          │    └── RecordExists     "... already exists", "... is actually attached to ..."
          ├── OpenFlowError         any ovs-ofctl / ovs-appctl failure
          │    ├── SwitchUnreachable  "x is not a bridge or a socket", no <br>.mgmt socket
          │    ├── FlowSyntaxError    rejected by ovs-ofctl before it reached the switch
          │    └── FlowRejected       OFPT_ERROR from the switch (a bundle is then discarded whole)
          ├── IptablesError         any iptables/ip6tables(-save/-restore) failure
          │    └── IptablesRuleError  a rule/chain rejected ("line N failed", "Error occurred at
          │                           line: N"); restore is atomic, so nothing was applied
          ├── ConntrackError        a conntrack failure (not "0 flow entries")
          └── ArpingError           an arping failure (unknown device: DeviceNotFound)

The ``CommandFailed`` subclasses keep ``argv``, ``rc``, ``stderr`` and
``stdout``, so a log line always shows what ran.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class HostError(Exception):
    """Base class of every error from ``neutrino.system``."""


class CommandNotFound(HostError):
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        name = self.argv[0] if self.argv else "?"
        super().__init__(f"command not found: {name} (argv {self.argv})")


class CommandTimeout(HostError):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        super().__init__(f"timed out after {timeout}s: {' '.join(self.argv)}")


class ProcessError(HostError):
    """A managed daemon failed to start or to stop."""


class CommandFailed(HostError):
    def __init__(self, argv: Sequence[str], rc: int, stderr: str = "", stdout: str = "") -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr
        self.stdout = stdout
        detail = stderr.strip() or stdout.strip()
        super().__init__(f"{' '.join(self.argv)} exited {rc}: {detail}")


class NamespaceNotFound(CommandFailed):
    pass


class NamespaceExists(CommandFailed):
    pass


class DeviceNotFound(CommandFailed):
    pass


class DeviceExists(CommandFailed):
    pass


class AddressExists(CommandFailed):
    pass


class OvsdbError(CommandFailed):
    pass


class OvsdbUnreachable(OvsdbError):
    pass


class BridgeNotFound(OvsdbError):
    pass


class PortNotFound(OvsdbError):
    pass


class RecordExists(OvsdbError):
    pass


class OpenFlowError(CommandFailed):
    pass


class SwitchUnreachable(OpenFlowError):
    pass


class FlowSyntaxError(OpenFlowError):
    pass


class FlowRejected(OpenFlowError):
    pass


class IptablesError(CommandFailed):
    pass


class IptablesRuleError(IptablesError):
    @property
    def line(self) -> int | None:
        """The input line iptables-restore rejected, when it said."""
        m = re.search(r"line:? (\d+)", self.stderr)
        return int(m.group(1)) if m else None


class ConntrackError(CommandFailed):
    pass


class ArpingError(CommandFailed):
    pass


_IPTABLES = (
    "iptables ip6tables iptables-save ip6tables-save iptables-restore ip6tables-restore "
    "iptables-nft iptables-legacy iptables-nft-save iptables-nft-restore ip6tables-nft-save "
    "ip6tables-nft-restore iptables-legacy-save iptables-legacy-restore ip6tables-legacy-save "
    "ip6tables-legacy-restore"
)

# (tool basenames, space separated, or None for any; stderr regex; class).
# First match wins,
# so specific patterns come before the per-tool fallbacks.
_RULES: tuple[tuple[tuple[str, ...] | None, re.Pattern[str], type[CommandFailed]], ...] = tuple(
    (None if tool is None else tuple(tool.split()), re.compile(pattern), cls)
    for tool, pattern, cls in (
        (None, r'Cannot open network namespace', NamespaceNotFound),
        ("ip", r'Cannot create namespace file .*File exists', NamespaceExists),
        (
            "ip ethtool sysctl tcpdump",
            r'Cannot find device|Device "[^"]*" does not exist'
            r'|no device matches name|No such device',
            DeviceNotFound,
        ),
        ("ip", r'Address already assigned', AddressExists),
        ("ip", r'RTNETLINK answers: File exists', DeviceExists),
        ("ovs-vsctl", r'database connection failed', OvsdbUnreachable),
        ("ovs-vsctl", r'no bridge named', BridgeNotFound),
        ("ovs-vsctl", r'no port named|no row "[^"]*" in table Port', PortNotFound),
        ("ovs-vsctl", r'already exists|is actually attached to', RecordExists),
        ("ovs-vsctl", r'', OvsdbError),
        (
            "ovs-ofctl",
            r'is not a bridge or a socket|Connection refused'
            r'|connecting to \S+ \(No such file or directory\)',
            SwitchUnreachable,
        ),
        ("ovs-ofctl", r'OFPT_ERROR|Error OFP|OFPBFC_', FlowRejected),
        ("ovs-ofctl", r'ovs-ofctl: (-|[^:\s]+):\d+: ', FlowSyntaxError),
        ("ovs-ofctl", r'', OpenFlowError),
        ("ovs-appctl", r'cannot connect to', SwitchUnreachable),
        ("ovs-appctl", r'', OpenFlowError),
        (_IPTABLES, r'line:? \d+', IptablesRuleError),
        (_IPTABLES, r'', IptablesError),
        ("conntrack", r'', ConntrackError),
        ("arping", r'Device \S+ not available|No such device|Cannot find device', DeviceNotFound),
        ("arping", r'', ArpingError),
    )
)


def tool_of(argv: Sequence[str]) -> str:
    """The tool an argv really runs, skipping ``ip netns exec NS`` and ``env K=V``."""
    args = list(argv)
    while args:
        head = args[0].rsplit("/", 1)[-1]
        if head == "ip" and args[1:3] == ["netns", "exec"] and len(args) > 4:
            args = args[4:]
        elif head == "env":
            args = args[1:]
            while args and "=" in args[0] and not args[0].startswith("-"):
                args = args[1:]
        else:
            return head
    return ""


def translate(argv: Sequence[str], rc: int, stderr: str, stdout: str = "") -> CommandFailed:
    """Map a failed command to the most specific ``CommandFailed`` subclass."""
    tool = tool_of(argv)
    for rule_tool, pattern, cls in _RULES:
        if rule_tool is not None and tool not in rule_tool:
            continue
        if pattern.search(stderr):
            return cls(argv, rc, stderr, stdout)
    return CommandFailed(argv, rc, stderr, stdout)


__all__ = [
    "AddressExists",
    "ArpingError",
    "BridgeNotFound",
    "CommandFailed",
    "CommandNotFound",
    "CommandTimeout",
    "ConntrackError",
    "IptablesError",
    "IptablesRuleError",
    "DeviceExists",
    "DeviceNotFound",
    "FlowRejected",
    "FlowSyntaxError",
    "HostError",
    "NamespaceExists",
    "NamespaceNotFound",
    "OpenFlowError",
    "OvsdbError",
    "OvsdbUnreachable",
    "PortNotFound",
    "ProcessError",
    "RecordExists",
    "SwitchUnreachable",
    "tool_of",
    "translate",
]

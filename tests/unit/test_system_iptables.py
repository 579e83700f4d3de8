"""iptables / conntrack / arping adapters with a recording runner (no root)."""

from __future__ import annotations

import pytest

from neutrino.system import arping, conntrack, iptables
from neutrino.system.errors import (
    ArpingError,
    ConntrackError,
    DeviceNotFound,
    IptablesError,
    IptablesRuleError,
    translate,
)
from neutrino.system.exec import Completed, netns_argv


class Fake:
    def __init__(self, rc=0, stdout="", stderr=""):
        self.calls = []
        self.rc, self.stdout, self.stderr = rc, stdout, stderr

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        full = tuple(netns_argv(argv, netns))
        self.calls.append((full, input))
        if check and self.rc:
            raise translate(full, self.rc, self.stderr, self.stdout)
        return Completed(full, self.rc, self.stdout, self.stderr)


def test_iptables_argv():
    r = Fake(stdout="*filter\nCOMMIT\n")
    assert iptables.save("ns1", runner=r) == "*filter\nCOMMIT\n"
    iptables.restore("*filter\nCOMMIT", "ns1", runner=r)
    iptables.restore6("*filter\nCOMMIT\n", "ns1", noflush=True, runner=r)
    iptables.save6(None, table="nat", runner=r)
    assert r.calls == [
        (("ip", "netns", "exec", "ns1", "iptables-save"), None),
        (("ip", "netns", "exec", "ns1", "iptables-restore"), "*filter\nCOMMIT\n"),
        (("ip", "netns", "exec", "ns1", "ip6tables-restore", "-n"), "*filter\nCOMMIT\n"),
        (("ip6tables-save", "-t", "nat"), None),
    ]


def test_iptables_errors():
    r = Fake(rc=2, stderr='iptables-restore v1.8.9 (nf_tables): unknown option "--bogus"\nError occurred at line: 2\n')
    with pytest.raises(IptablesRuleError) as exc:
        iptables.restore("*filter\n-A OUTPUT --bogus\nCOMMIT\n", "ns1", runner=r)
    assert exc.value.line == 2
    r = Fake(rc=1, stderr="iptables-restore: line 3 failed: No chain/target/match by that name.\n")
    with pytest.raises(IptablesRuleError) as exc:
        iptables.restore("x", runner=r)
    assert exc.value.line == 3
    with pytest.raises(IptablesError):
        iptables.save("ns1", runner=Fake(rc=4, stderr="Permission denied"))


def test_rules_parsing():
    text = "# Generated\n*nat\n:PREROUTING ACCEPT [3:180]\n:x - [0:0]\n-A x -j ACCEPT\nCOMMIT\n# Completed\n"
    assert iptables.rules(text) == {"nat": [":PREROUTING ACCEPT", ":x -", "-A x -j ACCEPT"]}


@pytest.mark.parametrize("rc", [0, 1])
def test_conntrack_zero_entries_is_success_whatever_the_exit_code(rc):
    r = Fake(rc=rc, stderr="conntrack v1.4.5 (conntrack-tools): 0 flow entries have been deleted.\n")
    assert conntrack.flush("ns1", dst="172.16.0.50", runner=r) == 0
    assert r.calls[0][0] == ("ip", "netns", "exec", "ns1", "conntrack", "-D", "-f", "ipv4", "-d", "172.16.0.50")


def test_conntrack_counts_and_errors():
    r = Fake(stderr="conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n")
    assert conntrack.flush(None, src="fd00::5", runner=r) == 3
    assert r.calls[0][0] == ("conntrack", "-D", "-f", "ipv6", "-s", "fd00::5")
    with pytest.raises(ConntrackError):
        conntrack.flush("ns1", runner=Fake(rc=1, stderr="conntrack v1.4.7: Operation failed: invalid parameters"))


def test_arping():
    r = Fake(rc=1)
    arping.garp("qg-1", "172.16.0.10", "qrouter-x", runner=r)  # no reply: fine
    assert r.calls[0][0] == (
        "ip",
        "netns",
        "exec",
        "qrouter-x",
        "arping",
        "-U",
        "-I",
        "qg-1",
        "-c",
        "1",
        "-w",
        "2",
        "172.16.0.10",
    )
    with pytest.raises(DeviceNotFound):
        arping.garp("nope", "1.2.3.4", runner=Fake(rc=2, stderr="arping: Device nope not available."))
    with pytest.raises(ArpingError):
        arping.garp("qg-1", "1.2.3.4", runner=Fake(rc=2, stderr="arping: something else"))
    assert arping.garp_argv("d", "1.1.1.1", reply=True)[1] == "-A"

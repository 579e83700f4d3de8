"""iptables / conntrack / arping adapters against a throwaway namespace (root).

The machine's iptables is iptables-nft on Debian 12 (``backend()``
reports which); rules live per namespace, so nothing here touches the
machine's own ruleset.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from neutrino.system import arping, conntrack, iptables
from neutrino.system.errors import CommandNotFound, DeviceNotFound, IptablesError, IptablesRuleError, NamespaceNotFound

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables not installed"),
]

# (in iptables-save's canonical order: builtin chains first, rules grouped by chain)
RULESET = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:neutrino-snat - [0:0]
-A OUTPUT -d 172.16.0.50/32 -j DNAT --to-destination 10.0.0.5
-A POSTROUTING -j neutrino-snat
-A neutrino-snat -s 10.0.0.0/24 -o qg-test -j SNAT --to-source 172.16.0.10
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:neutrino-local - [0:0]
-A INPUT -p tcp -m tcp --dport 9697 -j DROP
-A OUTPUT -m conntrack --ctstate NEW -j neutrino-local
-A neutrino-local -d 127.0.0.1/32 -j ACCEPT
COMMIT
"""


def sh(ns, *argv):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True)


def test_backend_is_reported():
    assert iptables.backend() in ("nf_tables", "legacy")


def test_restore_save_round_trip(netns):
    assert "-A" not in iptables.save(netns)
    iptables.restore(RULESET, netns)
    got = iptables.rules(iptables.save(netns))
    assert got == iptables.rules(RULESET)
    # a second restore of another ruleset replaces the tables it names
    iptables.restore("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n", netns)
    got = iptables.rules(iptables.save(netns))
    assert got["filter"] == [":INPUT ACCEPT", ":FORWARD ACCEPT", ":OUTPUT ACCEPT", "-A INPUT -s 192.0.2.1/32 -j DROP"]
    assert got["nat"] == iptables.rules(RULESET)["nat"]
    # -n adds instead
    iptables.restore("*filter\n-A INPUT -s 192.0.2.2/32 -j DROP\nCOMMIT\n", netns, noflush=True)
    assert "-A INPUT -s 192.0.2.2/32 -j DROP" in iptables.rules(iptables.save(netns, table="filter"))["filter"]


def test_restore_is_atomic_and_errors_are_translated(netns):
    iptables.restore(RULESET, netns)
    before = iptables.rules(iptables.save(netns))
    broken = RULESET.replace("-A INPUT -p tcp", "-A NOSUCHCHAIN -p tcp")
    with pytest.raises(IptablesRuleError) as exc:
        iptables.restore(broken, netns)
    assert exc.value.line is not None
    with pytest.raises(IptablesRuleError):
        iptables.restore("*filter\n-A OUTPUT --bogus -j ACCEPT\nCOMMIT\n", netns)
    assert iptables.rules(iptables.save(netns)) == before  # nothing of the broken runs applied
    with pytest.raises(IptablesError):
        iptables.restore("*nosuchtable\nCOMMIT\n", netns)
    with pytest.raises(NamespaceNotFound):
        iptables.save("nt-no-such-ns")


def test_ip6tables_round_trip(netns):
    v6 = (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -d fe80::a9fe:a9fe/128 -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n"
    )
    iptables.restore6(v6, netns)
    assert iptables.rules(iptables.save6(netns)) == iptables.rules(v6)
    assert "-A" not in iptables.save(netns)  # IPv4 untouched


def test_conntrack_flush(netns):
    sh(netns, "ip", "link", "set", "lo", "up")
    iptables.restore(RULESET, netns)  # a conntrack match: tracking on
    sh(netns, "ping", "-c", "1", "-W", "1", "127.0.0.1")
    assert "127.0.0.1" in sh(netns, "conntrack", "-L").stdout
    assert conntrack.flush(netns, dst="10.99.0.1") == 0
    assert conntrack.flush(netns, dst="127.0.0.1") >= 1
    assert conntrack.flush(netns, dst="127.0.0.1") == 0  # "0 flow entries": not an error
    assert conntrack.flush(netns, src="::1") == 0
    assert conntrack.flush_argv(dst="fd00::1") == ["conntrack", "-D", "-f", "ipv6", "-d", "fd00::1"]


@pytest.mark.skipif(shutil.which("arping") is None, reason="arping (iputils-arping) not installed")
def test_garp(netns):
    sh(netns, "ip", "link", "add", "nta", "type", "veth", "peer", "name", "ntb")
    for dev in ("nta", "ntb"):
        sh(netns, "ip", "link", "set", dev, "up")
    sh(netns, "ip", "addr", "add", "10.9.9.1/24", "dev", "nta")
    arping.garp("nta", "10.9.9.1", netns)
    arping.garp("nta", "10.9.9.1", netns, reply=True)
    with pytest.raises(DeviceNotFound):
        arping.garp("nosuchdev", "10.9.9.1", netns)


def test_missing_binary_is_command_not_found(netns):
    with pytest.raises(CommandNotFound):
        iptables.save(
            netns,
            runner=lambda argv, **kw: __import__("neutrino.system.exec", fromlist=["run"]).run(
                ["no-such-iptables-save"], **kw
            ),
        )

"""neutrino.system.openflow: the ovs-ofctl runner (argv, dumps, bundles) against a recording runner."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from neutrino.system.exec import Completed
from neutrino.system.openflow import OpenFlow
from neutrino.system.ovsdb import Ovs

GOLDEN = Path(__file__).parent.parent / "golden"


class Recorder:
    def __init__(self, stdout: str = "") -> None:
        self.calls: list[dict] = []
        self.stdout = stdout

    def __call__(self, argv, *, netns=None, env=None, input=None, timeout=30, check=True):
        self.calls.append(dict(argv=list(argv), netns=netns, env=env, input=input))
        return Completed(tuple(argv), 0, self.stdout, "")


def test_openflow_dump(tmp_path: Path) -> None:
    rec = Recorder(stdout=(GOLDEN / "ofctl-dump-br-tun.txt").read_text())
    of = OpenFlow(Ovs(tmp_path, None, runner=rec))
    flows = of.dump("br-tun", table=20)
    assert rec.calls[0]["argv"][-2:] == [f"unix:{tmp_path}/br-tun.mgmt", "table=20"]
    assert "--no-names" in rec.calls[0]["argv"] and "--no-stats" in rec.calls[0]["argv"]
    assert len(flows) == 12


class Spec(NamedTuple):
    """A canonical flow as the agent passes it (``FlowText``): not a ``Flow``."""

    table: int
    priority: int
    match: str
    actions: str


ADD = [Spec(71, 10, "reg5=0x5", "drop"), Spec(0, 0, "", "NORMAL")]
DELETE = [Spec(60, 100, "in_port=5", "resubmit(,71)")]


def test_apply_canonical_timeout_grows_with_the_bundle(tmp_path: Path) -> None:
    rec = Recorder()
    of = OpenFlow(Ovs(tmp_path, "ns1", runner=rec))
    of.apply_canonical("br-int", 0xAB, ADD * 5000)
    argv = rec.calls[-1]["argv"]
    assert argv[3] == "--timeout=30"  # a big bundle gets more time than the default 10 s
    of.apply_canonical("br-int", 0xAB)  # nothing to do: no call
    assert len(rec.calls) == 1

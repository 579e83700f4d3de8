"""Functional tier: real namespaces and private userspace OVS instances (root only).

Every test module here sets ``pytestmark = pytest.mark.root`` (skipped without
root by tests/conftest.py); tests are skipped as well when the OVS / iproute2 /
tcpdump / ethtool / ping binaries are missing.

Fixtures:

* ``prefix``: a short unique name prefix for this test's namespaces.
* ``netns``: a fresh named namespace for one test (removed afterwards).
* ``make_fabric``: ``make_fabric(n_hosts, physnet=True)`` -> a started
  ``Fabric`` with hosts h1..hn (VTEPs 192.168.99.i/24), torn down at the end
  of the test, whatever happened.
* ``module_fabric``: the same for a whole module (scope=module), 2 hosts.
* ``private_ovs``: one private OVS in its own namespace (``Ovs`` handle).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from neutrino.system import netns as netns_mod
from neutrino.system.ovsdb import Ovs, PrivateOvs
from neutrino.testing.multihost import Fabric

REQUIRED_BINARIES = (
    "ip",
    "ovs-vswitchd",
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "tcpdump",
    "ethtool",
    "ping",
)
_missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _missing:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"missing binaries: {', '.join(_missing)}")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def _prefix() -> str:
    return "nt" + uuid.uuid4().hex[:5]


@pytest.fixture
def prefix() -> str:
    return _prefix()


@pytest.fixture
def netns(prefix: str) -> Iterator[str]:
    name = f"{prefix}-t"
    netns_mod.ensure_netns(name)
    try:
        yield name
    finally:
        netns_mod.remove_netns(name)


def _fabric(base: Path, n_hosts: int, physnet: bool) -> Fabric:
    fab = Fabric(_prefix(), base)
    try:
        fab.start()
        for i in range(1, n_hosts + 1):
            fab.add_host(f"h{i}", f"192.168.99.{i}/24", physnet=physnet)
    except BaseException:
        fab.teardown()
        raise
    return fab


@pytest.fixture
def make_fabric(tmp_path: Path) -> Iterator[Callable[..., Fabric]]:
    made: list[Fabric] = []

    def make(n_hosts: int = 2, physnet: bool = True) -> Fabric:
        fab = _fabric(tmp_path, n_hosts, physnet)
        made.append(fab)
        return fab

    yield make
    for fab in made:
        fab.teardown()


@pytest.fixture(scope="module")
def module_fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    fab = _fabric(tmp_path_factory.mktemp("fabric"), 2, True)
    try:
        yield fab
    finally:
        fab.teardown()


@pytest.fixture
def private_ovs(tmp_path: Path, netns: str) -> Iterator[Ovs]:
    inst = PrivateOvs(tmp_path / "ovs", netns)
    try:
        yield inst.start()
    finally:
        inst.destroy()

"""Issue 13, finding 7: allocation pools were checked pairwise inside the write
transaction (20k pools: 13 s, every writer waiting).  Now a subnet has at most
``[DEFAULT] max_allocation_pools`` pools (400 beyond, before any is parsed) and
overlaps are found by one sort and sweep (``ipam.pools.first_overlap``).
Timings are in bench/api_bench.py, not here.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from neutrino import errors
from neutrino.ipam import pools as ipam
from tests.api.conftest import error


def _pools(n: int, base: str = "10.0.0.0", step: int = 4) -> list[dict[str, str]]:
    """``n`` disjoint pools of 2 addresses, ``step`` apart, from base + 2."""
    b = int(ipaddress.ip_address(base))
    return [
        {"start": str(ipaddress.ip_address(b + 2 + step * i)), "end": str(ipaddress.ip_address(b + 3 + step * i))}
        for i in range(n)
    ]


# --- through the API ------------------------------------------------------------------------------
def test_20k_pools_are_refused_without_being_checked(api):
    net = api.network(as_="demo")
    before = api.snapshot()
    body = {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/8", "allocation_pools": _pools(20_000)}
    error(
        api.post("subnets", {"subnet": body}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: Too many allocation pools: 20000; a subnet may have at most 1000.",
    )
    assert api.snapshot() == before


def test_the_bound_is_inclusive_and_pools_come_back_as_given(api):
    net = api.network(as_="demo")
    pools = _pools(1000)
    random.Random(7).shuffle(pools)
    sub = api.subnet(net["id"], "10.0.0.0/16", as_="demo", allocation_pools=pools)
    assert sub["allocation_pools"] == pools
    error(
        api.put(f"subnets/{sub['id']}", {"subnet": {"allocation_pools": _pools(1001)}}, as_="demo"), 400, "InvalidInput"
    )
    # The gateway moves: the stored pools are checked against it, not counted again.
    moved = api.put(f"subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.0.255.254"}}, as_="demo")
    assert moved.status_code == 200, moved.text


def test_overlap_in_a_large_list_is_found(api):
    net = api.network(as_="demo")
    pools = _pools(900)  # pool i: base+2+4i .. base+3+4i
    pools.append({"start": "10.0.7.208", "end": "10.0.7.212"})  # base+2000..2004: pool 500 is 2002-2003
    error(
        api.post(
            "subnets",
            {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/16", "allocation_pools": pools}},
            as_="demo",
        ),
        409,
        "OverlappingAllocationPools",
        "Found overlapping allocation pools: 10.0.7.210-10.0.7.211 10.0.7.208-10.0.7.212 for subnet 10.0.0.0/16.",
    )


def test_the_bound_is_an_option(make_api):
    api = make_api({("DEFAULT", "max_allocation_pools"): "3"})
    net = api.network(as_="demo")
    body = {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}
    assert api.post("subnets", {"subnet": dict(body, allocation_pools=_pools(3))}, as_="demo").status_code == 201
    net2 = api.network(as_="demo")
    error(
        api.post("subnets", {"subnet": dict(body, network_id=net2["id"], allocation_pools=_pools(4))}, as_="demo"),
        400,
        "InvalidInput",
        "Invalid input for operation: Too many allocation pools: 4; a subnet may have at most 3.",
    )


# --- the sweep ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ranges,expected",
    [
        ([], None),
        ([(1, 5)], None),
        ([(1, 5), (6, 9)], None),  # adjacent: no shared address
        ([(6, 9), (1, 5)], None),  # unsorted
        ([(1, 5), (5, 9)], (0, 1)),  # one shared address
        ([(5, 9), (1, 5)], (0, 1)),
        ([(1, 9), (3, 4)], (0, 1)),  # containment
        ([(3, 4), (1, 9)], (0, 1)),
        ([(2, 2), (2, 2)], (0, 1)),  # identical single addresses
        ([(1, 100), (200, 300), (50, 60)], (0, 2)),
        ([(1, 3), (4, 10), (20, 30), (5, 6)], (1, 3)),
        ([(10, 20), (1, 2), (3, 4), (21, 30), (30, 31)], (3, 4)),
        ([(0, 2**128 - 1), (2**127, 2**127)], (0, 1)),  # IPv6-sized integers
    ],
)
def test_first_overlap(ranges, expected):
    assert ipam.first_overlap(ranges) == expected


def test_first_overlap_agrees_with_the_pairwise_check():
    rng = random.Random(13)
    for _ in range(2000):
        n = rng.randrange(0, 12)
        ranges = []
        for _ in range(n):
            a = rng.randrange(0, 60)
            ranges.append((a, a + rng.randrange(0, 8)))
        pairwise = [
            (i, j)
            for i in range(n)
            for j in range(i + 1, n)
            if ranges[i][0] <= ranges[j][1] and ranges[j][0] <= ranges[i][1]
        ]
        got = ipam.first_overlap(ranges)
        if not pairwise:
            assert got is None, ranges
        else:
            assert got in pairwise, (ranges, got)


def test_validate_pools_refuses_too_many_before_parsing():
    junk = [{"start": "not an address"}] * 5
    with pytest.raises(errors.InvalidInput):
        ipam.validate_pools(ipaddress.ip_network("10.0.0.0/24"), junk, None, max_pools=4)
    with pytest.raises(errors.InvalidAllocationPool):
        ipam.validate_pools(ipaddress.ip_network("10.0.0.0/24"), junk, None, max_pools=5)


@pytest.mark.parametrize("action", ["create", "update"])
def test_bad_pools_are_refused_without_the_write_lock(api, action):
    """Pools are validated on a read connection before the write transaction: with every writer
    blocked (the write lock held), a bad pool list is still answered at once, so it can never make
    other writers wait."""
    import threading

    if not api.db.is_sqlite:
        pytest.skip("PostgreSQL has no single write lock: writers lock only the rows they touch")
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.0.0.0/16", as_="demo")
    if action == "create":
        pools = _pools(900, "10.1.0.0") + [{"start": "10.1.0.1", "end": "10.1.0.2"}]  # overlaps the first
        body = {"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/16", "ip_version": 4, "allocation_pools": pools}}

        def send() -> Any:
            return api.post("subnets", body, as_="demo")
    else:
        pools = _pools(900) + [{"start": "10.0.0.1", "end": "10.0.0.2"}]

        def send() -> Any:
            return api.put(f"subnets/{sub['id']}", {"subnet": {"allocation_pools": pools}}, as_="demo")

    got: list = []
    api.db._write_lock.acquire()
    try:
        t = threading.Thread(target=lambda: got.append(send()), daemon=True)
        t.start()
        t.join(10)
        answered = not t.is_alive()
    finally:
        api.db._write_lock.release()
    t.join(30)
    assert answered, "the request waited for the write lock"
    error(got[0], 409, "OverlappingAllocationPools")


def test_another_projects_subnet_is_not_found_before_its_pools_are_checked(api):
    """The pools pre-check reads the subnet joined to its network: for a caller who cannot
    see the subnet it finds nothing, so the answer is 404 (not a 400 telling that the pools
    do not fit the hidden subnet's CIDR), and nothing changes."""
    net = api.network(as_="demo")
    sub = api.subnet(net["id"], "10.9.0.0/24", as_="demo")
    api.network(as_="other")  # the caller owns a network: it must not make demo's subnet visible
    before = api.snapshot()
    error(
        api.put(
            f"subnets/{sub['id']}",
            {"subnet": {"allocation_pools": [{"start": "192.168.0.2", "end": "192.168.0.9"}]}},
            as_="other",
        ),
        404,
        "SubnetNotFound",
    )
    assert api.snapshot() == before

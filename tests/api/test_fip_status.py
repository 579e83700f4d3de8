"""L3 agents report floating IP status through /neutrino/v1/floatingips/status.

Only for floating IPs whose router is scheduled to an L3 agent on the
reporting host; each change bumps the revision and is recorded on the feed.
"""

from __future__ import annotations

from tests.api import l3_helpers as l3

URL = "/neutrino/v1/floatingips/status"


def _report(api, host, agent_type="L3 agent"):
    r = api.post(
        "/neutrino/v1/agents/report",
        {
            "agent": {
                "agent_type": agent_type,
                "binary": "neutron-l3-agent",
                "topic": "l3_agent",
                "host": host,
                "configurations": {"agent_mode": "legacy"},
            }
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["agent"]


def _fip(api):
    """An L3 agent on net1, a router (scheduled there) and a floating IP associated through it."""
    _report(api, "net1")
    topo = l3.topology(api)
    fip = l3.floating_ip(api, topo.ext_net["id"], port_id=topo.port["id"])
    assert fip["router_id"] == topo.router["id"] and fip["status"] == "DOWN"
    return topo, fip


def test_l3_agent_sets_status_of_its_routers_fips(api):
    topo, fip = _fip(api)
    r = api.post(URL, {"host": "net1", "floatingips": {fip["id"]: "ACTIVE"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": [fip["id"]], "ignored": []}
    after = api.show("floatingips", "floatingip", fip["id"])
    assert after["status"] == "ACTIVE" and after["revision_number"] == fip["revision_number"] + 1
    feed = l3.changes(api, "floatingip", fip["id"])
    assert feed[-1][1] == "update" and feed[-1][2]["status"] == "ACTIVE"
    # same status again: no change, no new record
    r = api.post(URL, {"host": "net1", "floatingips": {fip["id"]: "ACTIVE"}})
    assert r.json() == {"changed": [], "ignored": []}
    assert len(l3.changes(api, "floatingip", fip["id"])) == len(feed)
    # the router itself stays ACTIVE
    assert api.show("routers", "router", topo.router["id"])["status"] == "ACTIVE"


def test_other_host_and_unknown_fips_are_ignored(api):
    _, fip = _fip(api)
    _report(api, "net2")
    r = api.post(URL, {"host": "net2", "floatingips": {fip["id"]: "ACTIVE", "nope": "ERROR"}})
    assert r.json() == {"changed": [], "ignored": [fip["id"], "nope"]}
    assert api.show("floatingips", "floatingip", fip["id"])["status"] == "DOWN"
    # an agent of another type on the router's host does not count as its L3 agent
    r = api.post(URL, {"host": "compute1", "floatingips": {fip["id"]: "ERROR"}})
    assert r.json()["ignored"] == [fip["id"]]


def test_unassociated_fip_is_ignored(api):
    _report(api, "net1")
    ext, _ = l3.external_network(api)
    fip = l3.floating_ip(api, ext["id"])
    r = api.post(URL, {"host": "net1", "floatingips": {fip["id"]: "ACTIVE"}})
    assert r.json() == {"changed": [], "ignored": [fip["id"]]}


def test_bad_bodies_and_members_refused(api):
    _, fip = _fip(api)
    for bad in (
        {"host": "net1", "floatingips": {fip["id"]: "BUILD"}},
        {"floatingips": {}},
        {"host": "net1", "floatingips": []},
        [1],
    ):
        r = api.post(URL, bad)
        assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "HTTPBadRequest", bad
    r = api.post(URL, {"host": "net1", "floatingips": {fip["id"]: "ACTIVE"}}, "demo")
    assert r.status_code == 403
    assert api.req("GET", URL).status_code == 405

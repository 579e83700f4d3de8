"""Agents report port status through /neutrino/v1/ports/status (bound host only)."""


def _port(api, host):
    net = api.network()
    api.subnet(net["id"], "10.1.0.0/24")
    return api.port(net["id"], **{"binding:host_id": host})


def test_agent_sets_status_of_ports_on_its_host(api):
    port = _port(api, "compute1")
    assert port["status"] == "DOWN"
    r = api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {port["id"]: "ACTIVE"}})
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == [port["id"]]
    after = api.show("ports", "port", port["id"])
    assert after["status"] == "ACTIVE"
    assert after["revision_number"] == port["revision_number"] + 1


def test_other_host_cannot_set_status(api):
    port = _port(api, "compute1")
    r = api.post("/neutrino/v1/ports/status", {"host": "compute2", "ports": {port["id"]: "ACTIVE"}})
    assert r.json() == {"changed": [], "ignored": [port["id"]]}
    assert api.show("ports", "port", port["id"])["status"] == "DOWN"


def test_bad_status_and_member_refused(api):
    port = _port(api, "compute1")
    r = api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {port["id"]: "UP"}})
    assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "HTTPBadRequest"
    r = api.post("/neutrino/v1/ports/status", {"host": "compute1", "ports": {port["id"]: "ACTIVE"}}, "demo")
    assert r.status_code == 403

"""An in-process compute + network + image API for the tests/api/test_compute*.py tests.

The network API carries the agents' internal server routes
(``/neutrino/v1/servers``), exactly as ``neutrino.server`` wires them.
Tokens are the fake identities of tests/api/conftest.py (admin, demo,
other, reader, service).
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from neutrino import config
from neutrino.api.app import build_network_app
from neutrino.api.factory import make_deps, make_network_api
from neutrino.compute import flavors
from neutrino.compute.app import build_compute_app, install_internal, make_compute_api
from neutrino.compute.image_app import build_image_app
from neutrino.compute.images import IMAGES
from neutrino.compute.scheduler import COMPUTE_AGENT
from neutrino.db import tables
from neutrino.db.engine import Database
from neutrino.feed.publisher import open_feed
from neutrino.timeutil import agent_ts
from tests.api.conftest import BASE_OVERRIDES, validate_token

CIRROS = IMAGES[0].id
MAX_MV = "2.79"


class ComputeEnv:
    def __init__(self, db_url: str, tmp_path: Path, overrides: Mapping[tuple[str, str], str] | None = None) -> None:
        self.cfg = config.defaults(tmp_path).with_overrides({**BASE_OVERRIDES, **(overrides or {})})
        self.db = Database(db_url)
        self._nets = 0
        flavors.seed(self.db)
        deps = make_deps(self.cfg, self.db)
        feed = open_feed(self.db, self.cfg.feed.retention)
        network_api = make_network_api(deps, validate_token, feed=feed)
        self.compute_api = make_compute_api(self.cfg, self.db, validate_token, deps)
        install_internal(network_api, self.compute_api.servers, feed)
        self.net = TestClient(build_network_app(network_api), raise_server_exceptions=False)
        self.nova = TestClient(
            build_compute_app(self.cfg, self.db, validate_token, api=self.compute_api), raise_server_exceptions=False
        )
        self.glance = TestClient(build_image_app(validate_token), raise_server_exceptions=False)
        for c in (self.net, self.nova, self.glance):
            c.__enter__()

    def close(self) -> None:
        for c in (self.net, self.nova, self.glance):
            c.__exit__(None, None, None)
        self.db.dispose()

    # --- raw requests ---------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        as_: str | None = "demo",
        json: Any = None,
        mv: str | None = MAX_MV,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        h = dict(headers or {})
        if as_ is not None:
            h["X-Auth-Token"] = as_
        if mv is not None:
            h["OpenStack-API-Version"] = f"compute {mv}"
        if not path.startswith("/"):
            path = "/v2.1/" + path
        return self.nova.request(method, path, json=json, headers=h)

    def ok(self, resp: Any, status: int = 200) -> Any:
        assert resp.status_code == status, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def neutron(self, method: str, path: str, as_: str = "admin", json: Any = None) -> Any:
        return self.net.request(method, path, json=json, headers={"X-Auth-Token": as_})

    # --- fixtures --------------------------------------------------------------------------
    def network(self, as_: str = "demo", cidr: str = "10.0.0.0/24", **attrs: Any) -> dict[str, Any]:
        self._nets += 1
        attrs.setdefault("name", f"net{self._nets}")
        net = self.ok(self.neutron("POST", "/v2.0/networks", as_, {"network": attrs}), 201)["network"]
        if cidr:
            self.ok(
                self.neutron(
                    "POST",
                    "/v2.0/subnets",
                    as_,
                    {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4}},
                ),
                201,
            )
        return net

    def port(self, network_id: str, as_: str = "demo", **attrs: Any) -> dict[str, Any]:
        return self.ok(self.neutron("POST", "/v2.0/ports", as_, {"port": {"network_id": network_id, **attrs}}), 201)[
            "port"
        ]

    def ports_of(self, server_id: str) -> list[dict[str, Any]]:
        return self.ok(self.neutron("GET", f"/v2.0/ports?device_id={server_id}"))["ports"]

    def agent(
        self, host: str, *, instances: int = 0, alive: bool = True, up: bool = True, ovs: bool = True, **conf: Any
    ) -> None:
        """A compute agent row (as the compute agent's heartbeat would write it)."""
        now = time.time() if alive else time.time() - 3600
        with self.db.write() as uow:
            existing = uow.conn.execute(
                select(tables.agents.c.id).where(
                    tables.agents.c.host == host, tables.agents.c.agent_type == COMPUTE_AGENT
                )
            ).first()
            values = {
                "heartbeat_at": int(now),
                "heartbeat_timestamp": agent_ts(now),
                "admin_state_up": up,
                "configurations": {"instances": instances, **conf},
            }
            if existing:
                uow.conn.execute(update(tables.agents).where(tables.agents.c.id == existing.id).values(**values))
            else:
                uow.conn.execute(
                    insert(tables.agents).values(
                        id=str(uuid.uuid4()),
                        agent_type=COMPUTE_AGENT,
                        binary="neutrino-compute",
                        topic="compute",
                        host=host,
                        created_at=agent_ts(now),
                        started_at=agent_ts(now),
                        description=None,
                        availability_zone=None,
                        resources_synced=None,
                        **values,
                    )
                )
            if ovs:
                # The host's L2 agent, so ports bound there get vif_type "ovs".
                uow.conn.execute(
                    delete(tables.agents).where(
                        tables.agents.c.host == host, tables.agents.c.agent_type == "Open vSwitch agent"
                    )
                )
                uow.conn.execute(
                    insert(tables.agents).values(
                        id=str(uuid.uuid4()),
                        agent_type="Open vSwitch agent",
                        binary="neutrino-openvswitch-agent",
                        topic="N/A",
                        host=host,
                        created_at=agent_ts(now),
                        started_at=agent_ts(now),
                        description=None,
                        availability_zone=None,
                        resources_synced=None,
                        heartbeat_at=int(now),
                        heartbeat_timestamp=agent_ts(now),
                        admin_state_up=True,
                        configurations={"tunnel_types": ["vxlan", "geneve"], "bridge_mappings": {"physnet": "br-phys"}},
                    )
                )

    def keypair(self, name: str = "k1", as_: str = "demo") -> dict[str, Any]:
        return self.ok(self.call("POST", "os-keypairs", as_, {"keypair": {"name": name}}), 201)["keypair"]

    def boot(self, as_: str = "demo", status: int = 202, mv: str = MAX_MV, **server: Any) -> Any:
        body = {"name": "vm", "imageRef": CIRROS, "flavorRef": "42", **server}
        return self.ok(self.call("POST", "servers", as_, {"server": body}, mv=mv), status)

    def show(self, sid: str, as_: str = "demo", mv: str = MAX_MV) -> dict[str, Any]:
        return self.ok(self.call("GET", f"servers/{sid}", as_, mv=mv))["server"]

    def changes(self, resource: str | None = None) -> list[dict[str, Any]]:
        out = self.ok(self.neutron("GET", "/neutrino/v1/changes?since=0&limit=10000", "service"))["changes"]
        return [c for c in out if resource is None or c["resource"] == resource]

    def report(self, sid: str, body: Any, as_: str = "service") -> Any:
        return self.neutron("POST", f"/neutrino/v1/servers/{sid}/state", as_, body)


def fault(resp: Any, status: int, kind: str, contains: str | None = None) -> str:
    """Assert a Nova-format error; returns its message."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert list(body) == [kind], body
    assert body[kind]["code"] == status, body
    if contains is not None:
        assert contains in body[kind]["message"], body
    return body[kind]["message"]

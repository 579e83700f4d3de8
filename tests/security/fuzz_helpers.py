"""Property-based fuzzing of the network API, driven by its own OpenAPI document.

``Fuzzer(api)`` loads the document the API serves (``GET /v2.0/openapi.json``)
into schemathesis, seeds a small cloud (networks, subnets, ports, routers,
security groups, floating IPs, a port forwarding, agents, tags; for the
projects demo, other and admin), then for every operation draws requests from
schemathesis's Hypothesis strategies, in its positive mode (valid by the
schema) or negative mode (invalid by it), and sends them in process with a
token of the chosen role (``tests/api/conftest.py`` identities).  Ids in paths
and bodies are often swapped for ids of real objects (the seeded ones and
those the run created), and addresses for addresses of the seeded subnets, so
that requests go past the first 404 or 400.

Checks for every request (``Problem``s are collected, never raised, so a run
reports everything it found):

* the status is below 500;
* a 4xx body is ``{"NeutronError": {"type", "message", "detail"}}`` (a 401
  has Keystone's ``{"error": {...}}``);
* a rejected write (POST/PUT/DELETE answered 4xx) committed no INSERT,
  UPDATE or DELETE to any table (the change feed is a table too): every
  statement of the database engine is watched (``WriteWatch``), which is
  stronger and much cheaper than comparing snapshots;
* an operation of the document is served: a valid request never gets 405.

Used by tests/security/test_fuzz_api.py (a bounded budget) and
bench/fuzz_bench.py (a longer run).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from sqlalchemy import event

POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE
WRITES = ("POST", "PUT", "DELETE", "PATCH")
BASE_URL = "http://testserver"

#: Path parameter -> pool of ids (see ``Fuzzer.pools``).
PATH_POOLS = {
    "network_id": "networks",
    "subnet_id": "subnets",
    "port_id": "ports",
    "router_id": "routers",
    "floatingip_id": "floatingips",
    "security_group_id": "security-groups",
    "security_group_rule_id": "security-group-rules",
    "agent_id": "agents",
    "port_forwarding_id": "port_forwardings",
    "project_id": "projects",
    "tag": "tags",
}
#: Body key -> pools its value may be taken from.
BODY_POOLS = {
    "network_id": ("networks",),
    "floating_network_id": ("external",),
    "subnet_id": ("subnets",),
    "port_id": ("ports",),
    "internal_port_id": ("ports",),
    "router_id": ("routers",),
    "security_group_id": ("security-groups",),
    "remote_group_id": ("security-groups",),
    "device_id": ("routers", "ports"),
    "project_id": ("projects",),
    "tenant_id": ("projects",),
    "security_groups": ("security-groups",),
    "ip_address": ("addresses",),
    "gateway_ip": ("addresses",),
    "floating_ip_address": ("addresses",),
    "fixed_ip_address": ("addresses",),
    "internal_ip_address": ("addresses",),
    "nexthop": ("addresses",),
    "start": ("addresses",),
    "end": ("addresses",),
    "cidr": ("cidrs",),
    "destination": ("cidrs",),
    "remote_ip_prefix": ("cidrs",),
    "device_owner": ("owners",),
}
OWNERS = [
    "network:router_interface",
    "network:router_gateway",
    "network:dhcp",
    "network:floatingip",
    "compute:nova",
    "compute:az1",
    "",
]
CIDRS = [
    "10.0.0.0/24",
    "10.0.5.0/24",
    "10.1.0.0/24",
    "10.99.0.0/24",
    "172.24.4.0/24",
    "fd00:1::/64",
    "fd00:9::/64",
    "0.0.0.0/0",
    "10.0.0.0/8",
    "192.168.7.0/28",
    "::/0",
]
ADDRESSES = [
    "10.0.0.1",
    "10.0.0.10",
    "10.0.0.11",
    "10.0.0.77",
    "10.0.0.254",
    "10.1.0.5",
    "10.99.0.20",
    "172.24.4.10",
    "172.24.4.99",
    "fd00:1::1",
    "fd00:1::42",
    "10.0.5.3",
]


@dataclass
class Problem:
    """One broken rule, with what reproduces it."""

    rule: str
    op: str
    role: str
    mode: str
    request: str
    status: int
    body: str

    def __str__(self) -> str:
        return (
            f"[{self.rule}] {self.op} as {self.role} ({self.mode}): {self.status}\n"
            f"    request: {self.request}\n    response: {self.body[:400]}"
        )


@dataclass
class Stats:
    """Requests tried, by operation and by status."""

    by_op: Counter = field(default_factory=Counter)  # op -> count
    by_status: Counter = field(default_factory=Counter)  # status -> count
    by_op_status: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    generated: int = 0
    skipped: set[str] = field(default_factory=set)  # "op (mode)" with no cases

    def add(self, op: str, status: int) -> None:
        self.by_op[op] += 1
        self.by_status[status] += 1
        self.by_op_status[op][status] += 1

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def describe(method: str, url: str, role: str, kwargs: dict[str, Any]) -> str:
    """The request as one line a person can replay with ``Api.req``."""
    if kwargs.get("params"):
        url = f"{url}?{urlencode(kwargs['params'], doseq=True)}"
    body = kwargs.get("json", kwargs.get("content"))
    text = json.dumps(body, ensure_ascii=True) if not isinstance(body, bytes) else repr(body)
    extra = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() in ("if-match", "content-type")}
    return f"{method} {url} token={role} headers={extra} body={text[:600]}"


def error_shape(status: int, content: bytes) -> str | None:
    """Why a 4xx body is not in Neutron's format (None when it is)."""
    try:
        body = json.loads(content)
    except ValueError:
        return "not JSON"
    if status == 401:
        ok = (
            isinstance(body, dict)
            and set(body) == {"error"}
            and isinstance(body["error"], dict)
            and body["error"].get("code") == 401
        )
        return None if ok else "not Keystone's 401 body"
    if not isinstance(body, dict) or set(body) != {"NeutronError"}:
        return "not a NeutronError"
    err = body["NeutronError"]
    if not isinstance(err, dict) or set(err) != {"type", "message", "detail"}:
        return "NeutronError without exactly type, message, detail"
    if not all(isinstance(err[k], str) for k in err) or not err["type"]:
        return "NeutronError fields are not strings"
    return None


class WriteWatch:
    """The data-changing statements (INSERT/UPDATE/DELETE) committed on an engine since ``reset``.

    Requests are sent one at a time, so the statements between two
    transaction ends belong to the transaction that ends.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.pending: list[str] = []
        self.committed: list[str] = []
        self._hooks = (("after_cursor_execute", self._executed), ("commit", self._commit), ("rollback", self._rollback))
        for name, fn in self._hooks:
            event.listen(engine, name, fn)

    def _executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            self.pending.append(" ".join(statement.split())[:120])

    def _commit(self, conn: Any) -> None:
        self.committed += self.pending
        self.pending = []

    def _rollback(self, conn: Any) -> None:
        self.pending = []

    def reset(self) -> None:
        self.pending, self.committed = [], []

    def close(self) -> None:
        for name, fn in self._hooks:
            event.remove(self.engine, name, fn)


class InProcessClient:
    """HTTP requests to an ASGI app on a private event loop (no thread hop per request)."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


class Fuzzer:
    """Draws requests from the served OpenAPI document and checks the answers (see module doc)."""

    def __init__(self, api: Any, *, seed_cloud: bool = True) -> None:
        self.api = api
        resp = api.req("GET", "/v2.0/openapi.json", as_=None)
        assert resp.status_code == 200, resp.text
        self.doc = resp.json()
        self.schema = schemathesis.openapi.from_dict(self.doc)
        self.operations: list[tuple[str, Any]] = []
        for result in self.schema.get_all_operations():
            op = result.ok()
            self.operations.append((op.definition.raw["operationId"], op))
        # Deletes last, so that the other operations find the seeded objects.
        self.operations.sort(key=lambda item: item[1].method.upper() == "DELETE")
        self.pools: dict[str, list[str]] = defaultdict(list)
        self.pools["projects"] = ["p-demo", "p-other", "p-admin"]
        self.pools["addresses"] = list(ADDRESSES)
        self.pools["cidrs"] = list(CIDRS)
        self.pools["owners"] = list(OWNERS)
        self.stats = Stats()
        self.problems: list[Problem] = []
        self._strategies: dict[tuple[str, str], Any] = {}
        self.watch = WriteWatch(api.db.engine)
        self.client = InProcessClient(api.app)
        if seed_cloud:
            self.seed_cloud()

    # --- the seeded cloud --------------------------------------------------------------------------
    def _make(self, path: str, key: str, body: dict[str, Any], role: str, pool: str) -> dict[str, Any]:
        obj = self.api.ok(self.api.post(path, {key: body}, role), 201)[key]
        self.pools[pool].append(obj["id"])
        return obj

    def seed_cloud(self) -> None:
        """Objects of three projects, so that drawn ids hit real ones (own and others')."""
        api = self.api
        ext = self._make("networks", "network", {"name": "public", "router:external": True}, "admin", "networks")
        self.pools["external"].append(ext["id"])
        self._make(
            "subnets", "subnet", {"network_id": ext["id"], "cidr": "172.24.4.0/24", "ip_version": 4}, "admin", "subnets"
        )
        shared = self._make("networks", "network", {"name": "shared", "shared": True}, "admin", "networks")
        self._make(
            "subnets",
            "subnet",
            {"network_id": shared["id"], "cidr": "10.99.0.0/24", "ip_version": 4},
            "admin",
            "subnets",
        )
        self._make("routers", "router", {"name": "admin-router"}, "admin", "routers")
        for role, cidr in (("demo", "10.0.0.0/24"), ("other", "10.1.0.0/24")):
            net = self._make("networks", "network", {"name": f"{role}-net"}, role, "networks")
            sub = self._make(
                "subnets", "subnet", {"network_id": net["id"], "cidr": cidr, "ip_version": 4}, role, "subnets"
            )
            if role == "demo":
                self._make(
                    "subnets",
                    "subnet",
                    {"network_id": net["id"], "cidr": "fd00:1::/64", "ip_version": 6},
                    role,
                    "subnets",
                )
            port = self._make("ports", "port", {"network_id": net["id"], "name": f"{role}-port"}, role, "ports")
            spare = self._make("ports", "port", {"network_id": net["id"], "name": f"{role}-spare"}, role, "ports")
            router = self._make(
                "routers",
                "router",
                {"name": f"{role}-router", "external_gateway_info": {"network_id": ext["id"]}},
                role,
                "routers",
            )
            api.ok(api.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}, role))
            sg = self._make("security-groups", "security_group", {"name": f"{role}-sg"}, role, "security-groups")
            self._make(
                "security-group-rules",
                "security_group_rule",
                {
                    "security_group_id": sg["id"],
                    "direction": "ingress",
                    "protocol": "tcp",
                    "port_range_min": 22,
                    "port_range_max": 22,
                },
                role,
                "security-group-rules",
            )
            self._make(
                "floatingips",
                "floatingip",
                {"floating_network_id": ext["id"], "port_id": port["id"]},
                role,
                "floatingips",
            )
            fip = self._make("floatingips", "floatingip", {"floating_network_id": ext["id"]}, role, "floatingips")
            ip = next(f["ip_address"] for f in spare["fixed_ips"] if ":" not in f["ip_address"])
            pf = api.ok(
                api.post(
                    f"floatingips/{fip['id']}/port_forwardings",
                    {
                        "port_forwarding": {
                            "protocol": "tcp",
                            "internal_port_id": spare["id"],
                            "internal_ip_address": ip,
                            "internal_port": 22,
                            "external_port": 2222,
                        }
                    },
                    role,
                ),
                201,
            )["port_forwarding"]
            self.pools["port_forwardings"].append(pf["id"])
            api.ok(api.put(f"networks/{net['id']}/tags", {"tags": ["red", "blue"]}, role))
        self.pools["tags"] += ["red", "blue"]
        for agent in (
            {
                "agent_type": "DHCP agent",
                "binary": "neutron-dhcp-agent",
                "topic": "dhcp_agent",
                "host": "net1",
                "configurations": {},
            },
            {
                "agent_type": "L3 agent",
                "binary": "neutron-l3-agent",
                "topic": "l3_agent",
                "host": "net1",
                "configurations": {},
            },
        ):
            rep = api.ok(api.req("POST", "/neutrino/v1/agents/report", "admin", json={"agent": agent}))
            self.pools["agents"].append(rep["agent"]["id"])
        # Every port (router interfaces and gateways too) and every default group and its rules.
        for coll in ("ports", "security-groups", "security-group-rules"):
            for obj in api.list(coll, "admin"):
                if obj["id"] not in self.pools[coll]:
                    self.pools[coll].append(obj["id"])

    # --- drawing ----------------------------------------------------------------------------------
    def _pick(self, data: Any, pools: Iterable[str], current: Any) -> Any:
        """Often a value from the pools, else the drawn value."""
        choices = [v for p in pools for v in self.pools.get(p, ())]
        return data.draw(st.sampled_from([*choices, current]), label="pool") if choices else current

    def _rewrite(self, data: Any, value: Any, depth: int = 0) -> Any:
        """Swap ids and addresses inside a body for real ones (keys of ``BODY_POOLS``)."""
        if depth > 6:
            return value
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                pools = BODY_POOLS.get(k) if isinstance(k, str) else None
                if pools and isinstance(v, str):
                    v = self._pick(data, pools, v)
                elif pools and isinstance(v, list):
                    v = [self._pick(data, pools, x) if isinstance(x, str) else x for x in v]
                else:
                    v = self._rewrite(data, v, depth + 1)
                out[k] = v
            return out
        if isinstance(value, list):
            return [self._rewrite(data, x, depth + 1) for x in value]
        return value

    def _prepare(self, data: Any, case: Any) -> None:
        for name in list(case.path_parameters or {}):
            pool = PATH_POOLS.get(name)
            if pool:
                case.path_parameters[name] = self._pick(data, (pool,), case.path_parameters[name])
        if isinstance(case.body, (dict, list)):
            case.body = self._rewrite(data, case.body)

    # --- sending and checking --------------------------------------------------------------------------
    def send(self, op_id: str, case: Any, role: str, mode: str) -> int:
        """Send one case as ``role``; record its status and any problem.  Returns the status."""
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers={"X-Auth-Token": role})
        headers = {
            k: v.encode("latin-1", "replace") if isinstance(v, str) else v
            for k, v in kwargs.get("headers", {}).items()
            if not k.lower().startswith("x-schemathesis") and k.lower() != "x-auth-token"
        }
        headers["X-Auth-Token"] = role.encode()
        req: dict[str, Any] = {"params": kwargs.get("params") or None, "headers": headers}
        if "json" in kwargs:
            req["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            req["content"] = data if isinstance(data, bytes) else str(data).encode()
        method, url = kwargs["method"], kwargs["url"]
        self.watch.reset()
        resp = self.client.request(method, url, **req)
        status = resp.status_code
        self.stats.add(op_id, status)

        def problem(rule: str) -> None:
            shown = {
                "json": req.get("json"),
                "content": req.get("content"),
                "headers": kwargs.get("headers"),
                "params": req.get("params"),
            }
            self.problems.append(
                Problem(rule, op_id, role, mode, describe(method, url, role, shown), status, resp.text)
            )

        if status >= 500:
            problem("5xx")
        elif status >= 400:
            why = error_shape(status, resp.content)
            if why:
                problem(f"error body: {why}")
            if status == 405 and mode == POSITIVE.value:
                problem("a documented operation answered 405")
            if self.watch.committed:
                problem(f"rejected request committed writes: {self.watch.committed[:5]}")
        elif status in (200, 201) and resp.content:
            self._learn(resp)
        return status

    def _learn(self, resp: Any) -> None:
        """Add the ids of created objects to the pools."""
        if resp.status_code != 201:
            return
        try:
            body = resp.json()
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        for key, value in body.items():
            pool = _POOL_OF_KEY.get(key.rstrip("s") if isinstance(value, list) else key)
            items = value if isinstance(value, list) else [value]
            for it in items:
                if pool and isinstance(it, dict) and isinstance(it.get("id"), str):
                    self.pools[pool].append(it["id"])

    # --- running -------------------------------------------------------------------------------------
    def run_operation(self, op_id: str, op: Any, role: str, mode: Any, examples: int, rng_seed: int) -> None:
        """Up to ``examples`` requests for one operation as ``role``."""
        if mode == NEGATIVE and not (op.definition.raw.get("parameters") or op.body):
            self.stats.skipped.add(f"{op_id} ({mode.value})")  # nothing there can be made invalid
            return
        key = (op_id, mode.value)
        if key not in self._strategies:
            self._strategies[key] = op.as_strategy(generation_mode=mode)
        strategy = self._strategies[key]

        @seed(rng_seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(data=st.data())
        def one(data: Any) -> None:
            case = data.draw(strategy, label="case")
            self._prepare(data, case)
            self.stats.generated += 1
            self.send(op_id, case, role, mode.value)

        try:
            one()
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
            self.stats.skipped.add(f"{op_id} ({mode.value})")
        except Flaky:
            # Hypothesis replayed a case and the pools had grown meanwhile: the run is over, not a finding.
            pass

    def run(
        self,
        roles: Iterable[str],
        modes: Iterable[Any],
        examples: int,
        *,
        rng_seed: int = 13,
        deadline: float | None = None,
        only: Callable[[str], bool] = lambda op_id: True,
    ) -> None:
        """Every operation (deletes last), for every mode and role, ``examples`` each (until ``deadline``, a
        monotonic time)."""

        def stop() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        for op_id, op in self.operations:
            if not only(op_id):
                continue
            for mode in modes:
                for role in roles:
                    if stop():
                        return
                    self.run_operation(op_id, op, role, mode, examples, rng_seed)

    def close(self) -> None:
        self.client.close()
        self.watch.close()

    def report(self, limit: int = 20) -> str:
        lines = [f"{len(self.problems)} problem(s) in {self.stats.total} requests:"]
        lines += [str(p) for p in self.problems[:limit]]
        return "\n".join(lines)


#: Response key -> pool of created ids.
_POOL_OF_KEY = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "router": "routers",
    "floatingip": "floatingips",
    "security_group": "security-groups",
    "security_group_rule": "security-group-rules",
    "port_forwarding": "port_forwardings",
}

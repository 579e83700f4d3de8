"""``neutrino console SERVER -- ARGV``: run a command inside an instance.

The server is looked up (by id, else by unique name) through the compute
agents' endpoint of the API (admin credentials of the state dir); the command
runs in the instance's namespace with this terminal's stdio, and its exit
status is returned.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx

from neutrino.agents.auth import AGENT_OPENRC, read_openrc
from neutrino.agents.compute.planner import netns_name
from neutrino.cli.layout import SERVER, endpoints, load_config
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import client_context, verify_arg
from neutrino.system.exec import netns_argv
from neutrino.system.netns import netns_exists


def _verify(layout: Any, creds: Any) -> Any:
    """httpx ``verify=``: the openrc's CA (TLS), presenting this node's client certificate
    when it has one (the agents' endpoints know nodes by their certificates)."""
    paths = pki_paths(layout.root)
    if creds.cacert and paths.node_cert.exists() and paths.node_key.exists():
        return client_context(creds.cacert, paths.node_cert, paths.node_key)
    return verify_arg(creds.cacert)


def _token(creds: Any, verify: Any = None) -> str:
    """A project-scoped token for ``creds``; ``verify`` (httpx) defaults to the openrc's CA."""
    if verify is None:
        verify = verify_arg(creds.cacert)
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": creds.username, "domain": {"name": creds.user_domain}, "password": creds.password}
                },
            },
            "scope": {"project": {"name": creds.project_name, "domain": {"name": creds.project_domain}}},
        }
    }
    r = httpx.post(f"{creds.auth_url.rstrip('/')}/auth/tokens", json=body, timeout=30, verify=verify)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def find_server(layout: Any, ref: str) -> dict[str, Any] | None:
    try:  # the running server's endpoints (they include a --port-offset)
        url = layout.pidfile(SERVER).read().extra["endpoints"]["network"].rstrip("/")
    except Exception:  # noqa: BLE001 - not running via `up`: use the configuration
        url = endpoints(load_config(layout.conf, layout.root))["network"].rstrip("/")
    # The agents' service user may read the compute agents' endpoint; a compute node (where
    # the instance's namespace is) has only its credentials.  The admin's on a controller
    # that predates them.
    path = layout.root / AGENT_OPENRC
    creds = read_openrc(path if path.exists() else layout.root / "admin-openrc")
    verify = _verify(layout, creds)
    r = httpx.get(
        f"{url}/neutrino/v1/servers", headers={"X-Auth-Token": _token(creds, verify)}, timeout=30, verify=verify
    )
    r.raise_for_status()
    body = r.json()
    servers = body.get("servers", body) if isinstance(body, dict) else body
    by_id = [s for s in servers if s["id"] == ref]
    if by_id:
        return by_id[0]
    named = [s for s in servers if s.get("name") == ref]
    if len(named) > 1:
        raise SystemExit(f"error: more than one server is named {ref!r}; use its id")
    return named[0] if named else None


def run(layout: Any, ref: str, argv: list[str]) -> int:
    try:
        server = find_server(layout, ref)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the API: {exc}", file=sys.stderr)
        return 2
    if server is None:
        print(f"error: no server {ref!r}", file=sys.stderr)
        return 2
    ns = netns_name(server["id"])
    if server.get("status") != "ACTIVE" or not netns_exists(ns):
        print(f"error: server {ref!r} is not running (status {server.get('status')})", file=sys.stderr)
        return 1
    from neutrino.cli.filemodes import original_umask

    # The user's command gets the user's umask, not the private one of neutrino's own files.
    return subprocess.call(netns_argv(argv, ns), umask=original_umask())

"""The public APIs (Keystone, Neutron, Nova, Glance) as one user of an openrc file.

``Api`` logs in with the user's password, takes the endpoints from the token's
catalog and sends requests with the token; any unexpected status is a
``DemoError`` naming the request.  Used by ``neutrino demo`` (``neutrino.cli.demo_lab``).
"""

from __future__ import annotations

from typing import Any

import httpx

from neutrino.agents.auth import Credentials
from neutrino.pki.tls import verify_arg


class DemoError(Exception):
    """A step of the demo failed (reported as ``error: ...``)."""


class Api:
    """Password login for one openrc file; requests to the catalog's endpoints."""

    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": creds.username,
                            "domain": {"name": creds.user_domain},
                            "password": creds.password,
                        }
                    },
                },
                "scope": {"project": {"name": creds.project_name, "domain": {"name": creds.project_domain}}},
            }
        }
        self.http = httpx.Client(timeout=timeout, trust_env=False, verify=verify_arg(creds.cacert))
        try:
            r = self.http.post(f"{creds.auth_url.rstrip('/')}/auth/tokens", json=body)
        except httpx.HTTPError as exc:
            raise DemoError(f"cannot reach the identity API at {creds.auth_url}: {exc} (is neutrino up?)") from None
        if r.status_code != 201:
            raise DemoError(f"login as {creds.username} failed: HTTP {r.status_code} {r.text[:200]}")
        tok = r.json()["token"]
        self.token = r.headers["X-Subject-Token"]
        self.project_id = tok["project"]["id"]
        self.user = creds.username
        self.urls = {
            s["type"]: next(e["url"] for e in s["endpoints"] if e["interface"] == "public")
            for s in tok.get("catalog", [])
        }
        for kind in ("network", "compute", "image"):
            if kind not in self.urls:
                raise DemoError(f"the catalog has no {kind} endpoint")

    def call(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        **params: Any,
    ) -> Any:
        url = self.urls[service].rstrip("/") + path
        r = self.http.request(method, url, json=body, params=params or None, headers={"X-Auth-Token": self.token})
        if r.status_code not in ok:
            raise DemoError(f"{method} {path} as {self.user}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

    def net(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call(method, "network", f"/v2.0{path}", body, **kw)

    def first(self, collection: str, **filters: Any) -> dict[str, Any] | None:
        """The first ``collection`` entry matching ``filters`` (Neutron list filters)."""
        items = self.net("GET", f"/{collection}", **filters)[collection.replace("-", "_")]
        return items[0] if items else None

    def close(self) -> None:
        self.http.close()

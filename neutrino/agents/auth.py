"""Agent credentials: a token source that logs in to the identity API and
renews the token before it expires (or when the server answers 401).

The agents log in as the service user the identity bootstrap creates
(``neutron`` in project ``service``, only role ``service``), whose password
is in ``STATE/agent-openrc`` (mode 0600): the file a network or compute node
gets from the controller.  Never the cloud admin's ``admin-openrc``.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Credentials:
    auth_url: str  # .../v3
    username: str
    password: str
    project_name: str
    user_domain: str = "Default"
    project_domain: str = "Default"
    cacert: str | None = None  # OS_CACERT: the CA that verifies the APIs' certificates (TLS)


#: The agents' credentials in the state directory (written by ``neutrino.identity.bootstrap``).
AGENT_OPENRC = "agent-openrc"


class MissingCredentials(Exception):
    """The state directory has no agent credentials."""


def agent_credentials(state_dir: Path | str) -> Credentials:
    """The agents' service user from ``STATE/agent-openrc``; ``MissingCredentials`` without it."""
    path = Path(state_dir) / AGENT_OPENRC
    try:
        return read_openrc(path)
    except FileNotFoundError:
        raise MissingCredentials(
            f"{path} is missing: the agents log in with the service user's credentials "
            "that the controller's `neutrino up` writes there (copy it from the "
            "controller, see docs/multinode.md)"
        ) from None


def read_openrc(path: Path) -> Credentials:
    """Credentials from an openrc file as ``neutrino up`` writes them."""
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if parts and parts[0] == "export" and len(parts) > 1:
            key, _, val = parts[1].partition("=")
            env[key] = val
    return Credentials(
        env["OS_AUTH_URL"],
        env["OS_USERNAME"],
        env["OS_PASSWORD"],
        env["OS_PROJECT_NAME"],
        env.get("OS_USER_DOMAIN_NAME", "Default"),
        env.get("OS_PROJECT_DOMAIN_NAME", "Default"),
        env.get("OS_CACERT") or None,
    )


class PasswordTokenSource:
    """Async callable returning a valid token; one login at a time."""

    def __init__(
        self, creds: Credentials, transport: httpx.AsyncBaseTransport | None = None, renew_before: float = 300.0
    ) -> None:
        self.creds = creds
        self._transport = transport
        self._renew_before = renew_before
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._token = None

    async def __call__(self) -> str:
        async with self._lock:
            if self._token is None or time.time() > self._expires - self._renew_before:
                self._token, self._expires = await self._login()
            return self._token

    async def _login(self) -> tuple[str, float]:
        c = self.creds
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": c.username, "domain": {"name": c.user_domain}, "password": c.password}
                    },
                },
                "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain}}},
            }
        }
        async with httpx.AsyncClient(transport=self._transport, timeout=30) as http:
            resp = await http.post(f"{c.auth_url.rstrip('/')}/auth/tokens", json=body)
            resp.raise_for_status()
        # Renewal is driven by our own clock (no date parsing): tokens live at least 10 minutes.
        return resp.headers["X-Subject-Token"], time.time() + 600

"""Agent-side client of ``/neutrino/v1/`` and a follower that keeps desired state.

``FeedClient`` is a thin async wrapper over httpx (``transport=`` is
injectable: tests pass ``httpx.ASGITransport(app)`` or ``MockTransport``).
Over TLS an agent authenticates with its client certificate: ``token=None``
sends no ``X-Auth-Token``, ``verify=`` is the ``ssl.SSLContext`` that
presents the certificate and ``before_request`` runs before each request
(``AgentTls.maybe_reload``: a rotated certificate for new connections).
``DesiredState`` turns snapshot + changes into a ``State``
(``neutrino.feed.state``): it snapshots when it has no state, when the
server answers 410 (``ChangesGone``), and when an answer does not follow its
revision (``GapError``).  Agents are crash-only: a restarted agent either
snapshots again or resumes from a saved ``State`` (``State.from_json``);
both converge to the server's state.

Blocking behaviour: every method awaits one HTTP request; ``changes`` with
``timeout=S`` may take S seconds (the HTTP timeout is S plus a margin).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx

from neutrino.feed.state import GapError, State, apply_changes, check_batch, from_snapshot

LOG = logging.getLogger(__name__)
TokenSource = str | Callable[[], str | Awaitable[str]]


class FeedError(Exception):
    """The server answered with an error (other than 410)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type


class ChangesGone(FeedError):
    """410: the requested revision is no longer in the server's log."""


class FeedClient:
    """Client of the agent API at ``base_url`` (the network API root, e.g. ``http://ctl:9696``)."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource | None,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout_margin: float = 10.0,
        verify: ssl.SSLContext | None = None,
        before_request: Callable[[], object] | None = None,
    ) -> None:
        self._token = token
        self._margin = timeout_margin
        self._before = before_request
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout_margin,
            verify=verify if verify is not None else True,
        )

    async def __aenter__(self) -> FeedClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _token_value(self) -> str:
        if isinstance(self._token, str):
            return self._token
        assert self._token is not None  # _headers asks only when there is a token source
        value = self._token()
        return await value if inspect.isawaitable(value) else value

    async def _headers(self) -> dict[str, str]:
        """The request headers: the token, unless the client certificate authenticates (``token=None``)."""
        if self._before is not None:
            self._before()
        if self._token is None:
            return {"Accept": "application/json"}
        return {"X-Auth-Token": await self._token_value(), "Accept": "application/json"}

    def _may_renew(self) -> bool:
        """Whether a 401 is worth one retry: the token source may hand out a fresh token."""
        return self._token is not None and not isinstance(self._token, str)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> Any:
        for attempt in (1, 2):
            headers = await self._headers()
            resp = await self._http.request(
                method,
                f"/neutrino/v1/{path}",
                params=params,
                json=json,
                headers=headers,
                timeout=timeout or self._margin,
            )
            if resp.status_code == 401 and attempt == 1 and self._may_renew():
                continue  # the token source may hand out a fresh token
            break
        if resp.status_code >= 400:
            try:
                err = resp.json().get("NeutronError", {})
            except ValueError:
                err = {}
            cls = ChangesGone if resp.status_code == 410 else FeedError
            raise cls(resp.status_code, err.get("type", ""), err.get("message", resp.text[:200]))
        return resp.json()

    async def snapshot(self, resources: Iterable[str] | None = None) -> dict[str, Any]:
        """``{"revision": R, "resources": {...}}`` for the given feed resource types (default all)."""
        params = {"resources": ",".join(resources)} if resources is not None else None
        return await self._call("GET", "snapshot", params=params)

    async def changes(self, since: int, timeout: float = 0, limit: int = 1000) -> dict[str, Any]:
        """``{"revision": L, "changes": [...]}`` after ``since``; may wait ``timeout`` s. Raises ``ChangesGone``."""
        return await self._call(
            "GET",
            "changes",
            params={"since": since, "timeout": timeout, "limit": limit},
            timeout=timeout + self._margin,
        )

    async def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = ()) -> Any:
        """A call to the Neutron API itself (``/v2.0/...``) with the agent's token or certificate.

        Raises ``FeedError`` on an error status not listed in ``ok``.
        """
        for attempt in (1, 2):
            headers = await self._headers()
            resp = await self._http.request(method, path, json=body, headers=headers, timeout=self._margin)
            if resp.status_code == 401 and attempt == 1 and self._may_renew():
                continue
            break
        if resp.status_code >= 400 and resp.status_code not in ok:
            try:
                err = resp.json().get("NeutronError", {})
            except ValueError:
                err = {}
            raise FeedError(resp.status_code, err.get("type", ""), err.get("message", resp.text[:200]))
        return resp.json() if resp.content else None

    async def post(self, path: str, body: Any) -> Any:
        """POST ``body`` to ``/neutrino/v1/<path>`` (agent reports: port status, server state)."""
        return await self._call("POST", path, json=body)

    async def report(self, agent: dict[str, Any]) -> dict[str, Any]:
        """Heartbeat; returns the agent dict."""
        return (await self._call("POST", "agents/report", json={"agent": agent}))["agent"]


class DesiredState:
    """Follows the feed and holds the resulting ``State`` (``self.state``).

    ``types``: feed resource types to keep (default all).  ``state``: a saved
    state to resume from (its revision is where following starts).
    """

    def __init__(
        self,
        client: FeedClient,
        types: Iterable[str] | None = None,
        state: State | None = None,
        *,
        limit: int = 1000,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.types = list(types) if types is not None else None
        self.state = state
        self.limit = limit
        self.sleep = sleep
        self.snapshots = 0  # how many full snapshots were taken (observability, tests)

    async def resync(self) -> State:
        """Replace the state with a fresh snapshot."""
        body = await self.client.snapshot(self.types)
        self.snapshots += 1
        self.state = from_snapshot(body, self.types)
        return self.state

    async def poll(self, timeout: float = 0) -> State:
        """One step: snapshot if needed, else apply the next batch of changes (waiting up to ``timeout``)."""
        if self.state is None:
            return await self.resync()
        since = self.state.revision
        try:
            answer = await self.client.changes(since, timeout, self.limit)
            check_batch(since, answer["revision"], answer["changes"])
        except (ChangesGone, GapError) as exc:
            LOG.info("feed position %s lost (%s); taking a snapshot", since, exc)
            return await self.resync()
        self.state = apply_changes(self.state, answer["changes"], answer["revision"])
        return self.state

    async def catch_up(self) -> State:
        """Apply everything committed so far (no waiting)."""
        while True:
            before = self.state.revision if self.state is not None else None
            state = await self.poll(0)
            if state.revision == before:
                return state

    async def follow(
        self, timeout: float = 30, *, backoff: float = 1.0, max_backoff: float = 30.0
    ) -> AsyncIterator[State]:
        """Yield the state whenever it moves (first: right after the initial sync).

        Network and server errors are retried with exponential backoff; the
        state is kept, so following resumes where it stopped.
        """
        delay = backoff
        last: int | None = None
        while True:
            try:
                state = await self.poll(timeout)
            except (httpx.HTTPError, FeedError) as exc:
                LOG.warning("change feed unavailable (%s); retrying in %.1fs", exc, delay)
                await self.sleep(delay)
                delay = min(max_backoff, delay * 2)
                continue
            delay = backoff
            if state.revision != last:
                last = state.revision
                yield state


__all__ = ["ChangesGone", "DesiredState", "FeedClient", "FeedError"]

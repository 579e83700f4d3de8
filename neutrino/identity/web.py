"""HTTP plumbing of the identity API: Keystone errors, JSON responses, endpoints.

Every handler is a plain function ``fn(call) -> Response`` run in the thread
pool (database access and scrypt block).  ``endpoint()`` wraps it: it reads
and parses the JSON body, authenticates the caller from ``X-Auth-Token``
(unless ``authed=False``) and renders ``KeystoneError`` as Keystone does::

    {"error": {"code": 404, "title": "Not Found", "message": "..."}}
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino import request_limits as limits
from neutrino.context import AuthInfo
from neutrino.identity.tokens import TokenError, TokenProvider

LOG = logging.getLogger(__name__)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
}
UNAUTHORIZED = "The request you have made requires authentication."


class KeystoneError(Exception):
    """An error response; ``code`` is the HTTP status."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, dict(headers or {})

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.code == 401:
            headers["WWW-Authenticate"] = 'Keystone uri="/v3"'
        return json_response(
            {"error": {"code": self.code, "title": TITLES.get(self.code, "Error"), "message": self.message}},
            self.code,
            headers or None,
        )


def unauthorized(message: str = UNAUTHORIZED) -> KeystoneError:
    return KeystoneError(401, message)


def forbidden(action: str) -> KeystoneError:
    return KeystoneError(403, f"You are not authorized to perform the requested action: {action}.")


def not_found(kind: str, ident: str) -> KeystoneError:
    return KeystoneError(404, f"Could not find {kind}: {ident}.")


def bad_request(message: str) -> KeystoneError:
    return KeystoneError(
        400,
        f"{message} The server could not comply with the request since it is "
        "either malformed or otherwise incorrect. The client is assumed to be "
        "in error.",
    )


def conflict(kind: str, detail: str) -> KeystoneError:
    return KeystoneError(409, f"Conflict occurred attempting to store {kind} - {detail}.")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


@dataclass
class Call:
    """One request as handlers see it."""

    request: Request
    auth: AuthInfo | None
    body: Any

    @property
    def path(self) -> dict[str, str]:
        return self.request.path_params

    @property
    def query(self):
        return self.request.query_params

    @property
    def base(self) -> str:
        """Root URL as the client reached us, with a trailing slash."""
        return str(self.request.base_url)

    @property
    def is_admin(self) -> bool:
        """Cloud admin: a project-scoped token carrying the admin role."""
        return bool(self.auth and self.auth.project_id and "admin" in self.auth.roles)

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise forbidden(f"identity:{action}")

    def obj(self, key: str) -> dict:
        """``body[key]`` as a dict, or 400."""
        val = self.body.get(key) if isinstance(self.body, dict) else None
        if not isinstance(val, dict):
            raise bad_request(f"Expecting to find {key} in request body.")
        return val


Handler = Callable[[Call], Response]


def endpoint(fn: Handler, tokens: TokenProvider, *, authed: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``fn`` as a Starlette endpoint (see module docstring)."""

    async def run(request: Request) -> Response:
        try:
            auth = None
            if authed:
                tok = request.headers.get("x-auth-token")
                if not tok:
                    raise unauthorized()
                try:
                    auth = tokens.validate(tok)
                except TokenError as exc:
                    raise unauthorized() from exc
            body = None
            if request.method in ("POST", "PUT", "PATCH"):
                raw = await request.body()
                if raw:
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise bad_request("Malformed JSON in request body.") from exc
            # PostgreSQL cannot store or compare NUL in text, and no identity field needs it.
            if (
                limits.contains_nul(body)
                or "\x00" in request.scope["path"]
                or any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items())
            ):
                raise bad_request(limits.NUL_REFUSED)
            return await run_in_threadpool(fn, Call(request, auth, body))
        except KeystoneError as exc:
            return exc.response()
        except Exception:
            LOG.exception("identity request %s %s failed", request.method, request.url.path)
            return KeystoneError(
                500, "An unexpected error prevented the server from fulfilling your request."
            ).response()

    return run

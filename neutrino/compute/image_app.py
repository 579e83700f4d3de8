"""The Image API: a read-only Glance v2 subset over the built-in images.

Served on ``[image] bind_port`` (catalog type ``image``, URL ``http://HOST:9292``):

* ``GET /`` (300) and ``GET /versions`` (200): the version list;
* ``GET /v2/images``: filters ``name``, ``id``, ``status``, ``visibility``,
  ``os_hidden``, ``disk_format``, ``container_format``; ``limit``/``marker``
  paging with a ``next`` link; ``sort_key``/``sort_dir`` or ``sort``;
* ``GET /v2/images/{id}``; ``GET /v2/schemas/image(s)`` (minimal).

Everything else that would change an image answers 403: images are built in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from neutrino.asgi import handled_lifespan
from neutrino.compute import images
from neutrino.context import AuthInfo

_AUTH_ERROR = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}
_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
_FILTERS = ("name", "id", "status", "visibility", "disk_format", "container_format")


class ImageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def _versions(base: str) -> dict[str, Any]:
    out = []
    for vid, status in (
        ("v2.9", "CURRENT"),
        ("v2.8", "SUPPORTED"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
        ("v2.5", "SUPPORTED"),
        ("v2.4", "SUPPORTED"),
        ("v2.3", "SUPPORTED"),
        ("v2.2", "SUPPORTED"),
        ("v2.1", "SUPPORTED"),
        ("v2.0", "SUPPORTED"),
    ):
        out.append({"id": vid, "status": status, "links": [{"rel": "self", "href": f"{base}/v2/"}]})
    return {"versions": out}


def build_image_app(validate_token: Callable[[str], AuthInfo], auth_uri: str = "") -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await handled_lifespan(scope, receive, send) or scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = dispatch(request, validate_token)
        except _Unauthorized:
            response = _json(_AUTH_ERROR, 401, {"WWW-Authenticate": f"Keystone uri=\"{auth_uri}\""})
        except ImageError as exc:
            response = _json(
                {"code": exc.status, "title": _TITLES.get(exc.status, "Error"), "message": exc.message}, exc.status
            )
        response.headers.setdefault("x-openstack-request-id", "req-" + str(uuid.uuid4()))
        await response(scope, receive, send)

    return app


class _Unauthorized(Exception):
    pass


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{proto}://{host}"


def dispatch(request: Request, validate_token: Callable[[str], AuthInfo]) -> Response:
    path = request.url.path.rstrip("/") or "/"
    method = request.method
    base = _base_url(request)
    if path in ("/", "/versions"):
        if method != "GET":
            raise ImageError(405, "The method is not allowed for this resource.")
        return _json(_versions(base), 300 if path == "/" else 200)
    if path == "/healthcheck":
        return Response("OK", media_type="text/plain")
    if not path.startswith("/v2/") and path != "/v2":
        raise ImageError(404, "The resource could not be found.")
    token = request.headers.get("x-auth-token")
    if not token:
        raise _Unauthorized()
    try:
        validate_token(token)
    except Exception:  # noqa: BLE001 - any invalid token is a 401
        raise _Unauthorized() from None
    parts = [p for p in path[len("/v2") :].split("/") if p]
    if parts[:1] == ["schemas"] and method == "GET" and len(parts) == 2 and parts[1] in ("image", "images"):
        return _json({"name": parts[1], "properties": {}, "additionalProperties": {"type": "string"}})
    if parts[:1] != ["images"]:
        raise ImageError(404, "The resource could not be found.")
    if len(parts) == 1:
        if method == "GET":
            return _list(request, base)
        if method == "POST":
            raise ImageError(403, "Images are built in; uploading images is not supported.")
        raise ImageError(405, "The method is not allowed for this resource.")
    img = images.BY_ID.get(parts[1])
    if img is None:
        raise ImageError(404, f"No image found with ID {parts[1]}")
    if len(parts) == 2 and method == "GET":
        return _json(img.view())
    if method == "GET":
        raise ImageError(404, "The resource could not be found.")
    raise ImageError(403, "Images are built in and cannot be changed.")


def _list(request: Request, base: str) -> Response:
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    items = [i.view() for i in images.IMAGES]
    for key in _FILTERS:
        for raw in params.get(key, []):
            wanted = raw[3:].split(",") if raw.startswith("in:") else [raw]
            if key == "visibility" and raw == "all":
                continue
            items = [i for i in items if str(i.get(key)) in wanted]
    if "os_hidden" in params:
        hidden = params["os_hidden"][-1].lower() == "true"
        items = [i for i in items if i["os_hidden"] == hidden]
    for tag in params.get("tag", []):
        items = [i for i in items if tag in i["tags"]]
    sort_key, sort_dir = "created_at", "desc"
    if "sort" in params:
        first = params["sort"][-1].split(",")[0]
        sort_key, _, d = first.partition(":")
        sort_dir = d or "desc"
    sort_key = (params.get("sort_key") or [sort_key])[-1]
    sort_dir = (params.get("sort_dir") or [sort_dir])[-1]
    if sort_dir not in ("asc", "desc"):
        raise ImageError(400, f"Invalid sort direction: {sort_dir}")
    if items and sort_key not in items[0]:
        raise ImageError(400, f"Invalid sort key: {sort_key}.")
    items.sort(key=lambda i: (str(i.get(sort_key) or ""), i["id"]), reverse=sort_dir == "desc")
    marker = params["marker"][-1] if params.get("marker") else None
    if marker:
        ids = [i["id"] for i in items]
        if marker not in ids:
            raise ImageError(400, f"marker [{marker}] not found")
        items = items[ids.index(marker) + 1 :]
    body: dict[str, Any] = {"first": "/v2/images", "schema": "/v2/schemas/images"}
    if "limit" in params:
        try:
            limit = int(params["limit"][-1])
        except ValueError:
            raise ImageError(400, "limit param must be an integer") from None
        if limit < 0:
            raise ImageError(400, "limit param must be positive")
        if len(items) > limit:
            items = items[:limit]
            q = [(k, v) for k, vs in params.items() if k != "marker" for v in vs]
            if items:
                q.append(("marker", items[-1]["id"]))
            body["next"] = f"/v2/images?{urlencode(q)}"
    body["images"] = items
    return _json(body)

"""JSON shapes of the Keystone v3 resources, the service catalog and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from neutrino.config import Config
from neutrino.context import AuthInfo
from neutrino.identity.store import DEFAULT_DOMAIN, Row

#: (service type, service name, URL) of one catalog entry.
Endpoint = tuple[str, str, str]
INTERFACES = ("public", "internal", "admin")
_NS = uuid.UUID("5c0a7d0e-9f1b-4a44-8d59-6e6575747269")

VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def iso(ts: float) -> str:
    """Keystone's timestamp form: ``2026-11-27T15:21:06.000000Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version(base: str) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": f"{base}v3/"}],
        "media-types": MEDIA_TYPES,
    }


def _host(host: str) -> str:
    host = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def default_catalog_endpoints(cfg: Config) -> list[Endpoint]:
    """Identity (``https://HOST:5000/v3``) and network (``https://HOST:9696``) entries.

    HOST is ``[identity] public_host``, else the service's bind host
    (``127.0.0.1`` for a wildcard bind); ``http://`` with ``[DEFAULT] use_ssl = false``.
    """
    pub, sch = cfg.identity.public_host, "https" if cfg.default.use_ssl else "http"
    return [
        ("identity", "keystone", f"{sch}://{_host(pub or cfg.identity.bind_host)}:{cfg.identity.bind_port}/v3"),
        ("network", "neutron", f"{sch}://{_host(pub or cfg.default.bind_host)}:{cfg.default.bind_port}"),
    ]


def build_catalog(endpoints: Iterable[Endpoint], region: str) -> list[dict[str, Any]]:
    """Keystone's catalog: one service per entry, one endpoint per interface.

    Ids are derived from the entries, so every replica serves the same ones.
    """
    out = []
    for stype, name, url in endpoints:
        sid = uuid.uuid5(_NS, f"service/{stype}/{name}").hex
        eps = [
            {
                "id": uuid.uuid5(_NS, f"endpoint/{sid}/{iface}").hex,
                "interface": iface,
                "region_id": region,
                "region": region,
                "url": url.rstrip("/"),
            }
            for iface in INTERFACES
        ]
        out.append({"id": sid, "type": stype, "name": name, "endpoints": eps})
    return out


def domain_view(base: str) -> dict[str, Any]:
    return {**DEFAULT_DOMAIN, "tags": [], "options": {}, "links": {"self": f"{base}v3/domains/default"}}


def domain_ref(domain_id: str) -> dict[str, str]:
    return {"id": domain_id, "name": "Default" if domain_id == "default" else domain_id}


def project_view(p: Row, base: str) -> dict[str, Any]:
    return {
        "id": p["id"],
        "name": p["name"],
        "domain_id": p["domain_id"],
        "description": p["description"],
        "enabled": bool(p["enabled"]),
        "parent_id": p["domain_id"],
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}v3/projects/{p['id']}"},
    }


def user_view(u: Row, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": u["id"],
        "name": u["name"],
        "domain_id": u["domain_id"],
        "enabled": bool(u["enabled"]),
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{base}v3/users/{u['id']}"},
    }
    for key in ("default_project_id", "email", "description"):
        if u.get(key):
            out[key] = u[key]
    return out


def role_view(r: Row, base: str) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "domain_id": None,
        "description": None,
        "options": {},
        "links": {"self": f"{base}v3/roles/{r['id']}"},
    }


def collection(key: str, items: list[dict[str, Any]], self_url: str) -> dict[str, Any]:
    return {key: items, "links": {"self": self_url, "previous": None, "next": None}}


def token_view(
    auth: AuthInfo, methods: list[str], role_ids: dict[str, str], catalog: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The ``token`` object of POST/GET /v3/auth/tokens.

    ``role_ids`` maps role names to ids (a name without a row is its own id);
    ``catalog`` None omits it.  Unscoped tokens carry no project, roles or catalog.
    """
    tok: dict[str, Any] = {
        "methods": methods,
        "user": {
            "id": auth.user_id,
            "name": auth.user_name,
            "domain": domain_ref(auth.domain_id),
            "password_expires_at": None,
        },
        "audit_ids": [auth.audit_id],
        "expires_at": iso(auth.expires_at),
        "issued_at": iso(auth.issued_at),
    }
    if auth.project_id:
        tok["project"] = {"id": auth.project_id, "name": auth.project_name, "domain": domain_ref("default")}
        tok["is_domain"] = False
        tok["roles"] = [{"id": role_ids.get(n, n), "name": n} for n in auth.roles]
        if catalog is not None:
            tok["catalog"] = catalog
    return {"token": tok}

"""Nova API microversions: which one a request asks for, and the version documents.

A request names its version in ``OpenStack-API-Version: compute X.Y`` (or the
older ``X-OpenStack-Nova-API-Version: X.Y``); ``latest`` means the maximum and
no header means 2.1.  A version outside [MIN, MAX] is answered with 406.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from neutrino.compute import faults

MIN = (2, 1)
MAX = (2, 79)
UPDATED = "2013-07-23T11:33:21Z"
_VERSION_RE = re.compile(r"^([1-9][0-9]*)\.(0|[1-9][0-9]*)$")
HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version")


class Version(tuple):
    """``(major, minor)``; compares with plain tuples: ``mv >= (2, 47)``."""

    def __new__(cls, major: int, minor: int) -> Version:
        return super().__new__(cls, (major, minor))

    def __str__(self) -> str:
        return f"{self[0]}.{self[1]}"


def fmt(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _parse(text: str) -> Version:
    text = text.strip()
    if text.lower() == "latest":
        return Version(*MAX)
    m = _VERSION_RE.match(text)
    if m is None:
        raise faults.BadRequest(f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum.")
    major, minor = m.groups()
    return Version(int(major), int(minor))


def requested(headers: Mapping[str, str]) -> Version:
    """The version a request asks for (raises 400 for a malformed one, 406 when unsupported)."""
    raw = None
    generic = headers.get("openstack-api-version")
    if generic:
        for item in generic.split(","):
            service, _, ver = item.strip().partition(" ")
            if service.strip().lower() == "compute":
                raw = ver
    if raw is None:
        raw = headers.get("x-openstack-nova-api-version")
    if not raw:
        return Version(*MIN)
    v = _parse(raw)
    if not MIN <= v <= MAX:
        raise faults.NotAcceptable(
            f"Version {fmt(v)} is not supported by the API. Minimum is {fmt(MIN)} and maximum is {fmt(MAX)}."
        )
    return v


def response_headers(v: tuple[int, int]) -> dict[str, str]:
    return {
        "OpenStack-API-Version": f"compute {fmt(v)}",
        "X-OpenStack-Nova-API-Version": fmt(v),
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }


def version_doc(base: str) -> dict[str, Any]:
    """The v2.1 version document (``GET /v2.1``)."""
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": fmt(MAX),
        "min_version": fmt(MIN),
        "updated": UPDATED,
        "links": [
            {"rel": "self", "href": f"{base}/v2.1/"},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


def versions_doc(base: str) -> dict[str, Any]:
    """``GET /``: the available versions."""
    doc = version_doc(base)
    return {"versions": [{k: doc[k] for k in ("id", "status", "version", "min_version", "updated", "links")}]}

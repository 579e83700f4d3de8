"""Checks shared by the compute resources' requests (pure: no database).

``member`` and ``no_extra`` check a JSON body as Nova's schemas do;
``page`` applies Nova's ``limit``/``marker`` paging to an already sorted list.
All raise ``faults.BadRequest`` with Nova's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neutrino.compute import faults


def member(body: Any, key: str) -> dict[str, Any]:
    """``body[key]``, which must be an object in an object body."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise faults.BadRequest(
            f"Invalid input for field/attribute {key}. Value: {body}. '{key}' is a required property"
        )
    return body[key]


def no_extra(d: dict[str, Any], allowed: set[str]) -> None:
    """Refuse keys of ``d`` outside ``allowed`` (Nova's ``additionalProperties: false``)."""
    extra = sorted(set(d) - allowed)
    if extra:
        were = "was" if len(extra) == 1 else "were"
        raise faults.BadRequest(
            f"Additional properties are not allowed ({', '.join(repr(x) for x in extra)} {were} unexpected)"
        )


def page(items: list[Any], params: dict[str, list[str]], key: Callable[[Any], Any], what: str) -> list[Any]:
    """Nova's limit/marker paging over already sorted ``items``."""
    marker = (params.get("marker") or [""])[-1]
    if marker:
        ids = [key(x) for x in items]
        if marker not in ids:
            raise faults.BadRequest(f"marker [{marker}] not found")
        items = items[ids.index(marker) + 1 :]
    if "limit" in params:
        try:
            limit = int(params["limit"][-1])
        except ValueError:
            raise faults.BadRequest(
                f"Invalid input for query parameters limit. Value: {params['limit'][-1]}. Not an integer"
            ) from None
        if limit < 0:
            raise faults.BadRequest("limit must be >= 0")
        items = items[:limit]
    return items

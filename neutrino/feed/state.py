"""Desired state as an agent holds it: pure functions over snapshot and changes.

``State`` maps a feed resource type (``"port"``) to ``{id: body}`` plus the
revision it reflects.  ``from_snapshot`` builds one from a snapshot body;
``apply_changes`` folds a batch of changes into a new ``State`` (inputs are
never mutated; untouched types are shared between old and new).

Applying replays the log literally: ``create``/``update`` store the body,
``delete`` drops the object.  The server's producers put every object whose
API view changed on the log (cascaded deletes and parents whose revision
was bumped included), so nothing is derived here.  A change at or below the
state's revision is skipped: replays are harmless, so a batch may overlap
what was already applied.

Types outside ``State.types`` are ignored, so an agent following only ports
and networks keeps only those.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from neutrino.feed.resources import PLURAL, SINGULAR, VOLATILE_FIELDS

Objects = Mapping[str, Mapping[str, dict[str, Any]]]


class GapError(Exception):
    """A batch of changes that cannot follow the state: the caller must re-snapshot."""


@dataclass(frozen=True)
class State:
    revision: int
    objects: Objects = field(default_factory=dict)
    types: frozenset[str] = frozenset(PLURAL)

    def get(self, rtype: str, obj_id: str) -> dict[str, Any] | None:
        return self.objects.get(rtype, {}).get(obj_id)

    def of(self, rtype: str) -> Mapping[str, dict[str, Any]]:
        return self.objects.get(rtype, {})

    def to_json(self) -> bytes:
        """Serialise (for an agent that saves its position across restarts)."""
        return orjson.dumps(
            {"revision": self.revision, "types": sorted(self.types), "objects": {k: v for k, v in self.objects.items()}}
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> State:
        data = orjson.loads(raw)
        return cls(data["revision"], data["objects"], frozenset(data["types"]))


def from_snapshot(body: Mapping[str, Any], types: Iterable[str] | None = None) -> State:
    """A ``State`` from a ``GET /neutrino/v1/snapshot`` body."""
    wanted = frozenset(types) if types is not None else frozenset(PLURAL)
    objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in wanted}
    for plural, items in body.get("resources", {}).items():
        rtype = SINGULAR.get(plural, plural)
        if rtype in wanted:
            objects[rtype] = {o["id"]: o for o in items}
    return State(int(body["revision"]), objects, wanted)


def check_batch(since: int, revision: int, changes: list[Mapping[str, Any]]) -> None:
    """Raise ``GapError`` unless a changes answer can follow revision ``since``.

    The server promises revisions strictly increasing, all above ``since``,
    and an answer revision >= the last change's.  Anything else means the
    log was reset or the answer is corrupt.
    """
    last = since
    for ch in changes:
        if ch["revision"] <= last:
            raise GapError(f"change revision {ch['revision']} does not follow {last}")
        last = ch["revision"]
    if revision < last:
        raise GapError(f"answer revision {revision} is behind its changes ({last})")


def apply_changes(state: State, changes: Iterable[Mapping[str, Any]], revision: int | None = None) -> State:
    """The state after ``changes`` (in revision order); ``revision`` defaults to the last one."""
    touched: dict[str, dict[str, dict[str, Any]]] = {}
    last = state.revision

    def table(rtype: str) -> dict[str, dict[str, Any]]:
        if rtype not in touched:
            touched[rtype] = dict(state.objects.get(rtype, {}))
        return touched[rtype]

    for ch in changes:
        if ch["revision"] <= last:
            continue
        last = ch["revision"]
        rtype = ch["resource"]
        if rtype not in state.types:
            continue
        if ch["action"] == "delete":
            table(rtype).pop(ch["id"], None)
        elif ch.get("body") is not None:
            table(rtype)[ch["id"]] = ch["body"]
    if not touched and revision is None and last == state.revision:
        return state
    objects = {**state.objects, **touched}
    return State(max(last, revision or 0, state.revision), objects, state.types)


def comparable(state: State) -> dict[str, dict[str, dict[str, Any]]]:
    """The objects without fields the feed does not keep fresh (for equality checks)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rtype, objs in state.objects.items():
        drop = VOLATILE_FIELDS.get(rtype, frozenset())
        out[rtype] = {i: {k: v for k, v in o.items() if k not in drop} for i, o in objs.items()}
    return out


__all__ = ["GapError", "State", "apply_changes", "check_batch", "comparable", "from_snapshot"]

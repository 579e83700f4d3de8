"""Helpers shared by the resource services: standard attributes, tags,
revision bumps, ``If-Match`` and the service dependencies bundle.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar

from sqlalchemy import Table, and_, delete, false, insert, select, update
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Config
from neutrino.db import tables as t
from neutrino.db.engine import Database, UnitOfWork
from neutrino.ml2.manager import TypeManager
from neutrino.resources.query import ListQuery
from neutrino.resources.resource import Resource
from neutrino.timeutil import now_iso

#: Puts the admin view of these objects (of one feed type) on the change feed as ``update``
#: records, in the order given; in txn.  The caller has already advanced their revisions.
Recorder = Callable[[UnitOfWork, Sequence[str]], None]
#: Run before a port loses addresses: (uow, port id, the addresses it keeps; ``None``: the port
#: is being deleted and keeps none).  In txn.
PortAddressHook = Callable[[UnitOfWork, str, set[str] | None], None]
#: Run before an external network is deleted (before its ports are checked): (uow, network id).  In txn.
NetworkHook = Callable[[UnitOfWork, str], None]


@dataclass
class Deps:
    """What services need, built once by the app factory (no globals).

    Besides the shared parts, it carries what one service asks of another whose
    module it must not import (that module imports its own): the registry of feed
    recorders and the hooks on port and network events.  They are filled once, at
    wiring time, by ``neutrino.api.factory.make_network_api``:

    - ``recorders`` by ``neutrino.services.recorders.register``: ``network``,
      ``port``, ``security_group``, ``subnetpool``, ``address_scope``, ``floatingip``
      (used through ``record`` by the DHCP scheduler, RBAC, subnet pools, trunks and ports);
    - ``port_addresses_released`` and ``external_network_deleting`` by
      ``neutrino.services.l3.register`` (port forwardings, floating IPs).
    """

    cfg: Config
    db: Database
    types: TypeManager
    rng: random.Random
    #: Feed type -> what records its admin view (see ``record``).
    recorders: dict[str, Recorder] = field(default_factory=dict)
    #: Called in order by ``PortService`` before a port loses addresses or is deleted.
    port_addresses_released: list[PortAddressHook] = field(default_factory=list)
    #: Called in order by ``NetworkService.delete`` before an external network is deleted.
    external_network_deleting: list[NetworkHook] = field(default_factory=list)

    def record(self, uow: UnitOfWork, feed_type: str, ids: Sequence[str]) -> None:
        """Put the admin view of these ``feed_type`` objects on the change feed (``update``);
        in txn, after the caller advanced their revisions.  ``LookupError`` when no recorder
        was registered for ``feed_type`` (a wiring mistake)."""
        recorder = self.recorders.get(feed_type)
        if recorder is None:
            raise LookupError(f"no feed recorder registered for {feed_type!r} (neutrino.services.recorders)")
        recorder(uow, ids)


def new_id() -> str:
    return str(uuid.uuid4())


def std_values(item: Mapping[str, Any], *, revision: int = 0, with_name: bool = True) -> dict[str, Any]:
    """Column values of the standard attributes for an insert."""
    ts = now_iso()
    vals = {
        "id": item.get("id") or new_id(),
        "project_id": item.get("project_id") or "",
        "description": item.get("description") or "",
        "created_at": ts,
        "updated_at": ts,
        "revision_number": revision,
    }
    if with_name:
        vals["name"] = item.get("name") or ""
    return vals


class StdTail(TypedDict):
    """The trailing standard attributes of a view; ``**std_tail(...)`` in a typed literal."""

    description: str
    tags: list[str]
    created_at: str
    updated_at: str
    revision_number: int


def std_tail(row: Any, tags: list[str]) -> StdTail:
    """The trailing standard attributes of a response dict, in Neutron's order."""
    return {
        "description": row.description,
        "tags": tags,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "revision_number": row.revision_number,
    }


def bump(conn: Connection, table: Table, obj_id: str, values: Mapping[str, Any] | None = None) -> None:
    """Apply ``values`` and advance revision_number/updated_at by one."""
    vals = dict(values or {})
    vals["revision_number"] = table.c.revision_number + 1
    vals["updated_at"] = now_iso()
    conn.execute(update(table).where(table.c.id == obj_id).values(**vals))


def check_if_match(if_match: str | None, current: int) -> None:
    """Honour ``If-Match: revision_number=N`` (412 on mismatch)."""
    if not if_match:
        return
    parts = [p.strip() for p in if_match.split(",") if p.strip()]
    if len(parts) != 1 or not parts[0].startswith("revision_number="):
        raise errors.bad("Revision number etag must be in the format of revision_number=<int>")
    try:
        want = int(parts[0].split("=", 1)[1])
    except ValueError:
        raise errors.bad("Revision number etag must be in the format of revision_number=<int>") from None
    if want != current:
        raise errors.RevisionNumberConstraintFailed(expected=want, current=current)


# --- tags ----------------------------------------------------------------------------
def load_tags(conn: Connection, resource_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
    """Sorted tags per id."""
    if not ids:
        return {}
    q = select(t.tags.c.resource_id, t.tags.c.tag)
    if len(ids) > 400:
        q = q.where(t.tags.c.resource_type == resource_type)
    else:
        q = q.where(t.tags.c.resource_id.in_(list(ids)))
    out: dict[str, list[str]] = {}
    for rid, tag in conn.execute(q):
        out.setdefault(rid, []).append(tag)
    for v in out.values():
        v.sort()
    return out


def set_tags(conn: Connection, resource_type: str, rid: str, tags: Iterable[str]) -> list[str]:
    conn.execute(delete(t.tags).where(t.tags.c.resource_id == rid))
    uniq = sorted(set(tags))
    if uniq:
        conn.execute(insert(t.tags), [{"resource_id": rid, "tag": x, "resource_type": resource_type} for x in uniq])
    return uniq


def delete_tags(conn: Connection, rid: str) -> None:
    conn.execute(delete(t.tags).where(t.tags.c.resource_id == rid))


# --- SQL filter push-down ----------------------------------------------------------------
def push_filters(
    stmt: Any, table: Table, res: Resource, q: ListQuery, renames: dict[str, str] | None = None
) -> tuple[Any, set[str]]:
    """Add WHERE clauses for filters that map to a column; return (stmt, pushed names)."""
    pushed: set[str] = set()
    renames = renames or {}
    for name, values in q.filters.items():
        attr = res.by_name.get(name)
        col_name = renames.get(name) or (attr.column if attr else None)
        if not col_name or col_name not in table.c:
            continue
        col = table.c[col_name]
        if not values:  # every value given was one the column cannot hold (query.INTEGER_FILTERS)
            stmt = stmt.where(false())
        else:
            stmt = stmt.where(col.in_(values)) if len(values) > 1 else stmt.where(col == values[0])
        pushed.add(name)
    return stmt, pushed


V = TypeVar("V")  # the typed view a cache holds (``neutrino.resources.types``)


class VersionedCache(Generic[V]):
    """Response dicts keyed by (id, revision_number): a per-process read cache.

    Correct across processes because every change to what a resource's dict
    shows advances its revision_number (``bump``); an entry for an older
    revision is simply never asked for again and ages out (LRU).  Callers
    must not mutate the dicts they get back.
    """

    def __init__(self, max_items: int = 20000) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, obj_id: str, revision: int) -> V | None:
        hit = self._data.get(obj_id)
        if hit is None or hit[0] != revision:
            return None
        return hit[1]

    def put(self, obj_id: str, revision: int, obj: V) -> None:
        with self._lock:
            self._data[obj_id] = (revision, obj)
            self._data.move_to_end(obj_id)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)


def exists(conn: Connection, table: Table, *conds: Any) -> bool:
    return conn.execute(select(1).select_from(table).where(and_(*conds)).limit(1)).first() is not None


class ReadOnlyService:
    """Base of the collections a client may only read (availability zones, IP availability,
    service providers): writes are 405, and ``get`` is 404 unless the collection has members
    one can show."""

    special_filters: tuple[str, ...] = ()

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPNotFound()

    def create(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def update(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def delete(self, *args: Any, **kwargs: Any) -> None:
        raise errors.HTTPMethodNotAllowed()

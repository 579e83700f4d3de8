"""Server requests: parse and check the bodies and query parameters of the
servers API and of the compute agents' state reports (pure: no database).

Each function takes what the client sent (and the microversion, and whether
the caller is an admin where a field is admin-only) and returns checked,
canonical values, or raises Nova's error (``faults.*``; the agents' report
raises the network API's ``NeutronException``).  What needs the database
(does the flavor exist, may this project use that network) is the service's
part: ``server_service``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from neutrino import errors as neutron_errors
from neutrino.compute import faults
from neutrino.compute.microversion import Version
from neutrino.compute.validate import member, no_extra
from neutrino.ipam import addresses

#: The one availability zone.
DEFAULT_AZ = "nova"
MAX_COUNT = 10
MAX_METADATA = 128
MAX_USER_DATA = 65535
#: Nova's power states.
NOSTATE, RUNNING, SHUTDOWN = 0, 1, 4
#: status -> (vm_state, power_state) an agent report sets.
AGENT_STATES = {"ACTIVE": ("active", RUNNING), "ERROR": ("error", NOSTATE), "SHUTOFF": ("stopped", SHUTDOWN)}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_TAG_BAD = re.compile(r"[/,]")
_CREATE_KEYS = {
    "name",
    "imageRef",
    "flavorRef",
    "key_name",
    "user_data",
    "metadata",
    "networks",
    "security_groups",
    "availability_zone",
    "config_drive",
    "adminPass",
    "accessIPv4",
    "accessIPv6",
    "OS-DCF:diskConfig",
    "min_count",
    "max_count",
    "return_reservation_id",
    "block_device_mapping",
    "block_device_mapping_v2",
    "personality",
}
#: Sort keys of the list -> column of ``servers``.
_SORT_COLUMNS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "display_name": "name",
    "name": "name",
    "uuid": "id",
    "vm_state": "vm_state",
    "task_state": "task_state",
    "power_state": "power_state",
    "host": "host",
    "project_id": "project_id",
    "user_id": "user_id",
    "key_name": "key_name",
    "launched_at": "launched_at",
    "display_description": "description",
    "availability_zone": "availability_zone",
}

#: A requested network: ``{"port": id}`` or ``{"uuid": network id, "fixed_ip": canonical address | None}``.
NetworkRequest = dict[str, Any]


@dataclass(frozen=True)
class CreateRequest:
    """A checked ``POST /servers`` body.

    ``networks`` is ``"auto"``, ``"none"`` or the requested NICs in order;
    ``legacy_networks`` marks an ``auto`` the client did not ask for (before
    2.37 a missing or empty list): then no usable network means no NIC, not
    an error.  ``max_count`` is already capped at ``MAX_COUNT``.
    """

    name: str
    image_ref: str
    flavor_ref: str
    key_name: str | None
    user_data: str | None
    metadata: dict[str, str]
    admin_pass: str
    access_ipv4: str
    access_ipv6: str
    config_drive: bool
    description: str | None
    tags: list[str]
    max_count: int
    forced_host: str | None
    availability_zone: str
    networks: Literal["auto", "none"] | list[NetworkRequest]
    legacy_networks: bool
    security_groups: list[str]


@dataclass(frozen=True)
class StateReport:
    """A checked agent report: the new ``status`` with the ``vm_state`` and
    ``power_state`` it sets (the reported power state when given), the
    reported ``fault`` (``None`` or an object) and ``host`` (``None``: any)."""

    status: str
    vm_state: str
    power_state: int
    fault: dict[str, Any] | None
    host: str | None


# ============================================================================== small helpers
def as_list(params: dict[str, list[str]], key: str) -> list[str]:
    """The non-empty values of query parameter ``key``."""
    return [v for v in params.get(key, []) if v != ""]


def truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def usec_now() -> str:
    """Now, UTC, with microseconds (Nova's ``launched_at``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def hostname_for(name: str, fallback: str) -> str:
    """A DNS label from a display name (``server-<id>`` when nothing usable is left)."""
    h = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return h or f"server-{fallback}"


# ============================================================================== list parameters
def all_tenants(params: dict[str, list[str]]) -> bool:
    """Whether the list asks for every project's servers (``all_tenants`` bare or true)."""
    return "all_tenants" in params and (params["all_tenants"][-1] == "" or truthy(params["all_tenants"][-1]))


def power_states(params: dict[str, list[str]]) -> list[int]:
    try:
        return [int(v) for v in as_list(params, "power_state")]
    except ValueError:
        raise faults.BadRequest("Invalid power_state filter") from None


def iso_filter(raw: str, key: str) -> str:
    """A ``changes-since``/``changes-before`` value as the stored UTC timestamp text."""
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise faults.BadRequest(f"Invalid filter field: {key}.") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def filter_regex(pattern: str) -> re.Pattern[str]:
    """Nova's regex filters (``name``, ``ip``, ``ip6``); a bad regex matches itself literally."""
    try:
        return re.compile(pattern)
    except re.error:
        return re.compile(re.escape(pattern))


def sort_order(params: dict[str, list[str]]) -> tuple[str, bool]:
    """``(column of servers, descending)`` from ``sort_key``/``sort_dir`` (default: newest first)."""
    sort_key = (params.get("sort_key") or ["created_at"])[-1]
    sort_dir = (params.get("sort_dir") or ["desc"])[-1]
    if sort_key not in _SORT_COLUMNS:
        raise faults.BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}.")
    if sort_dir not in ("asc", "desc"):
        raise faults.BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}.")
    return _SORT_COLUMNS[sort_key], sort_dir == "desc"


# ============================================================================== create
def parse_create(body: Any, mv: Version, *, admin: bool) -> CreateRequest:
    """Check a ``POST /servers`` body; ``admin`` may force a host."""
    s = member(body, "server")
    if isinstance(body, dict):
        no_extra(body, {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"})
    allowed = set(_CREATE_KEYS)
    if mv >= (2, 19):
        allowed.add("description")
    if mv >= (2, 52):
        allowed.add("tags")
    if mv >= (2, 63):
        allowed.add("trusted_image_certificates")
    if mv >= (2, 74):
        allowed |= {"host", "hypervisor_hostname"}
    no_extra(s, allowed)
    req: dict[str, Any] = {}
    name = s.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise faults.BadRequest(
            "Invalid input for field/attribute name. Value: "
            f"{name}. 'name' must be a non-empty string of at most 255 characters"
        )
    req["name"] = name
    boot_image = check_bdms(s)
    for key, out in (("imageRef", "image_ref"), ("flavorRef", "flavor_ref")):
        v = s.get(key)
        if key == "imageRef" and not v and boot_image:
            v = boot_image
        if v is None or v == "":
            raise faults.BadRequest(f"Invalid input for field/attribute server. '{key}' is a required property")
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.")
        req[out] = str(v).rstrip("/").rsplit("/", 1)[-1]
    if s.get("personality"):
        raise faults.BadRequest("Personality files are not supported; use user data instead")
    key_name = s.get("key_name")
    if key_name is not None and (not isinstance(key_name, str) or not 1 <= len(key_name) <= 255):
        raise faults.BadRequest(f"Invalid input for field/attribute key_name. Value: {key_name}.")
    req["key_name"] = key_name
    req["user_data"] = user_data(s.get("user_data"))
    req["metadata"] = check_metadata(s.get("metadata", {}))
    req["admin_pass"] = s.get("adminPass") or "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(12)
    )
    if not isinstance(req["admin_pass"], str):
        raise faults.BadRequest("Invalid input for field/attribute adminPass.")
    for key in ("accessIPv4", "accessIPv6"):
        v = s.get(key) or ""
        if v:
            try:  # strict: no IPv6 scope id, blanks or control characters (issue 13)
                ok = addresses.parse_ip(v).version == (4 if key == "accessIPv4" else 6)
            except (ValueError, TypeError):
                ok = False
            if not ok:
                raise faults.BadRequest(
                    f"Invalid input for field/attribute {key}. Value: {v}. "
                    f"{v!r} is not a '{'ipv4' if key == 'accessIPv4' else 'ipv6'}'"
                )
            v = addresses.canonical_ip(v)
        req[key.replace("IPv", "_ipv")] = v
    req["config_drive"] = config_drive(s.get("config_drive"))
    desc = s.get("description")
    if desc is not None and (not isinstance(desc, str) or len(desc) > 255):
        raise faults.BadRequest("Invalid input for field/attribute description.")
    req["description"] = desc
    tags = s.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 50
        or any(not isinstance(x, str) or not 1 <= len(x) <= 60 or _TAG_BAD.search(x) for x in tags)
    ):
        raise faults.BadRequest("Invalid input for field/attribute tags.")
    req["tags"] = list(dict.fromkeys(tags))
    req["max_count"] = _count(s)
    req["forced_host"] = _forced_host(s, admin)
    req["availability_zone"] = DEFAULT_AZ
    # networks
    if "networks" not in s:
        if mv >= (2, 37):
            raise faults.BadRequest("Invalid input for field/attribute server. 'networks' is a required property")
        req["networks"], req["legacy_networks"] = "auto", True
    else:
        req["networks"], req["legacy_networks"] = parse_networks(s["networks"], mv), False
        if req["networks"] == [] and mv < (2, 37):
            req["networks"], req["legacy_networks"] = "auto", True
    groups = s.get("security_groups")
    names: list[str] = []
    if groups is not None:
        if not isinstance(groups, list) or any(
            not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g["name"] for g in groups
        ):
            raise faults.BadRequest("Invalid input for field/attribute security_groups.")
        names = list(dict.fromkeys(g["name"] for g in groups))
    req["security_groups"] = names
    return CreateRequest(**req)


def _count(s: dict[str, Any]) -> int:
    """``max_count`` capped at ``MAX_COUNT`` after checking ``min_count <= max_count``."""
    counts = []
    for key in ("min_count", "max_count"):
        v = s.get(key, 1)
        try:
            n = int(v) if not isinstance(v, bool) else 0
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.")
        counts.append(n)
    if counts[0] > counts[1]:
        raise faults.BadRequest("min_count must be <= max_count")
    if counts[0] > MAX_COUNT:
        raise faults.Forbidden(
            f"Quota exceeded for instances: Requested {counts[0]}, but the limit per request is {MAX_COUNT}"
        )
    return min(counts[1], MAX_COUNT)


def _forced_host(s: dict[str, Any], admin: bool) -> str | None:
    """The host an admin asked for (``availability_zone`` ``nova:HOST`` or, from 2.74, ``host``)."""
    forced = None
    az = s.get("availability_zone")
    if az not in (None, ""):
        if not isinstance(az, str):
            raise faults.BadRequest("Invalid input for field/attribute availability_zone.")
        zone, _, rest = az.partition(":")
        if zone not in ("", DEFAULT_AZ):
            raise faults.BadRequest("The requested availability zone is not available")
        if rest:
            if not admin:
                raise faults.policy("os_compute_api:servers:create:forced_host")
            forced = rest.split(":", 1)[0] or None
    host = s.get("host")
    if host is not None:
        if not admin:
            raise faults.policy("compute:servers:create:requested_destination")
        if not isinstance(host, str) or not host:
            raise faults.BadRequest("Invalid input for field/attribute host.")
        forced = host
    return forced


def check_bdms(s: dict[str, Any]) -> str | None:
    """Accept only local block devices (the image itself, blank local disks); returns a boot image id.

    OSC sends the image as a ``block_device_mapping_v2`` entry (source
    image, destination local, boot index 0) besides ``imageRef``.
    """
    if s.get("block_device_mapping"):
        raise faults.BadRequest("Volumes are not supported: block_device_mapping must be empty")
    bdms = s.get("block_device_mapping_v2") or []
    if not isinstance(bdms, list):
        raise faults.BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
    boot = None
    for b in bdms:
        if not isinstance(b, dict):
            raise faults.BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
        src, dst = b.get("source_type", "image"), b.get("destination_type", "local")
        if dst != "local" or src not in ("image", "blank"):
            raise faults.BadRequest(
                "Volumes are not supported: block devices must be local "
                "(source_type image or blank, destination_type local)"
            )
        if src == "image" and str(b.get("boot_index", "")) == "0":
            boot = b.get("uuid")
    return boot if isinstance(boot, str) else None


def user_data(v: Any) -> str | None:
    """``user_data`` as given: base64 text of at most ``MAX_USER_DATA`` characters."""
    if v is None:
        return None
    if not isinstance(v, str):
        raise faults.BadRequest("Invalid input for field/attribute user_data.")
    if len(v) > MAX_USER_DATA:
        raise faults.BadRequest(
            f"User data too large. User data must be no larger than {MAX_USER_DATA} "
            f"bytes once base64 encoded. Your data is {len(v)} bytes"
        )
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise faults.BadRequest("User data needs to be valid base 64.") from None
    return v


def config_drive(v: Any) -> bool:
    if v is None or v == "":
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return v.lower() in ("true", "1", "yes", "on")
    raise faults.BadRequest(f"Invalid input for field/attribute config_drive. Value: {v}.")


def check_metadata(md: Any) -> dict[str, str]:
    """A copy of ``md``, which must map 1-255 character keys to strings of at most 255
    characters, with at most ``MAX_METADATA`` items (403 beyond, as Nova's quota)."""
    if not isinstance(md, dict):
        raise faults.BadRequest(
            f"Invalid input for field/attribute metadata. Value: {md}. {md!r} is not of type 'object'"
        )
    for k, v in md.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255:
            raise faults.BadRequest(
                "Invalid input for field/attribute metadata. Metadata keys must be strings of 1 to 255 characters"
            )
        if not isinstance(v, str) or len(v) > 255:
            raise faults.BadRequest(
                f"Invalid input for field/attribute {k}. Metadata values must be strings of at most 255 characters"
            )
    if len(md) > MAX_METADATA:
        raise faults.Forbidden(
            f"Quota exceeded for metadata_items: Requested {len(md)}, but already used "
            f"0 of {MAX_METADATA} metadata_items"
        )
    return dict(md)


def parse_networks(nets: Any, mv: Version) -> Literal["auto", "none"] | list[NetworkRequest]:
    """The ``networks`` of a create: ``auto``/``none`` (from 2.37) or a list of port or network requests."""
    if isinstance(nets, str):
        if nets in ("auto", "none") and mv >= (2, 37):
            return "auto" if nets == "auto" else "none"
        raise faults.BadRequest(
            f"Invalid input for field/attribute networks. Value: {nets}. {nets!r} is not of type 'array'"
        )
    if not isinstance(nets, list):
        raise faults.BadRequest(f"Invalid input for field/attribute networks. Value: {nets}.")
    out: list[NetworkRequest] = []
    for n in nets:
        if not isinstance(n, dict):
            raise faults.BadRequest(f"Invalid input for field/attribute networks. Value: {n}.")
        no_extra(n, {"uuid", "port", "fixed_ip", "tag"})
        uid, port, fixed = n.get("uuid"), n.get("port"), n.get("fixed_ip")
        if port:
            if not isinstance(port, str) or not _UUID_RE.match(port):
                raise faults.BadRequest(f"Bad networks format: port uuid is not in proper format ({port})")
            if fixed:
                raise faults.BadRequest("Bad networks format: a fixed IP cannot be given with a port")
            out.append({"port": port})
            continue
        if not isinstance(uid, str) or not _UUID_RE.match(uid):
            raise faults.BadRequest(f"Bad networks format: network uuid is not in proper format ({uid})")
        if fixed is not None:
            try:  # strict and canonical: the allocator compares addresses as stored text
                fixed = addresses.canonical_ip(fixed)
            except (ValueError, TypeError):
                raise faults.BadRequest(f"Invalid fixed IP address ({fixed})") from None
        out.append({"uuid": uid, "fixed_ip": fixed})
    return out


# ============================================================================== update
def update_fields(body: Any, mv: Version) -> dict[str, Any]:
    """The ``server`` object of a ``PUT /servers/{id}``, its keys checked (values: ``update_values``)."""
    s = member(body, "server")
    allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if mv >= (2, 19):
        allowed.add("description")
    no_extra(s, allowed)
    return s


def update_values(s: dict[str, Any]) -> dict[str, Any]:
    """The ``servers`` column values an update's fields set (``OS-DCF:diskConfig`` is accepted, ignored)."""
    values: dict[str, Any] = {}
    if "name" in s:
        name = s["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise faults.BadRequest(f"Invalid input for field/attribute name. Value: {name}.")
        values["name"] = name
    if "description" in s:
        d = s["description"]
        if d is not None and (not isinstance(d, str) or len(d) > 255):
            raise faults.BadRequest("Invalid input for field/attribute description.")
        values["description"] = d
    for key, col in (("accessIPv4", "access_ipv4"), ("accessIPv6", "access_ipv6")):
        if key in s:
            v = s[key] or ""
            if v:
                try:
                    v = addresses.canonical_ip(v)  # strict: no scope id, blanks or controls
                except (ValueError, TypeError):
                    raise faults.BadRequest(f"Invalid input for field/attribute {key}. Value: {v}.") from None
            values[col] = v
    return values


# ============================================================================== agent reports
def parse_state_report(body: Any) -> StateReport:
    """Check a compute agent's ``POST /neutrino/v1/servers/{id}/state`` body (raises ``NeutronException``)."""
    if not isinstance(body, dict):
        raise neutron_errors.bad("Body must be an object")
    unknown = sorted(set(body) - {"status", "fault", "host", "power_state"})
    if unknown:
        raise neutron_errors.bad(f"Unrecognized attribute(s) '{neutron_errors.echo(', '.join(unknown))}'")
    status = body.get("status")
    if not isinstance(status, str) or status not in AGENT_STATES:  # a list or dict is not hashable
        raise neutron_errors.bad(
            f"Invalid status {neutron_errors.echo(repr(status))}: one of {', '.join(AGENT_STATES)}"
        )
    fault = body.get("fault")
    if fault is not None and not isinstance(fault, dict):
        raise neutron_errors.bad("'fault' must be an object")
    host = body.get("host")
    if host is not None and not isinstance(host, str):
        raise neutron_errors.bad("'host' must be a string")
    power = body.get("power_state")
    if power is not None and (not isinstance(power, int) or isinstance(power, bool) or not 0 <= power <= 7):
        raise neutron_errors.bad("'power_state' must be an integer 0-7")
    vm_state, default_power = AGENT_STATES[status]
    return StateReport(
        status=status, vm_state=vm_state, power_state=default_power if power is None else power, fault=fault, host=host
    )

"""Pure converters/validators for API attribute values.

Each function takes the raw JSON value and returns the canonical value or
raises ``ValueError`` with Neutron's reason text; the attribute layer wraps
it as ``Invalid input for <attr>. Reason: <reason>.``
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from neutrino.errors import echo
from neutrino.ipam import addresses

Conv = Callable[[Any], Any]

_MAC_RE = re.compile(
    r"^([0-9a-fA-F]{2})([:-]?)([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2"
    r"([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$"
)


class ConversionError(ValueError):
    """A value of the wrong type for a boolean or integer attribute (neutron-lib's
    ``convert_to_boolean``/``convert_to_int``: these also fail for filter values)."""


def to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return v.strip().lower() in ("true", "1", "yes", "on")
    raise ConversionError(f"'{echo(v)}' cannot be converted to boolean")


def to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ConversionError(f"'{echo(v)}' is not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ConversionError(f"'{echo(v)}' is not an integer")


def string(max_len: int | None = 255) -> Conv:
    def conv(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"'{echo(v)}' is not a valid string")
        if max_len is not None and len(v) > max_len:
            raise ValueError(f"'{echo(v)}' exceeds maximum length of {max_len}")
        if "\x00" in v:  # no field has a use for NUL, and PostgreSQL cannot store it in text
            raise ValueError(f"'{echo(v)}' contains a NUL character")
        return v

    return conv


def uuid_str(v: Any) -> str:
    if isinstance(v, str):
        try:
            return str(uuid.UUID(v)) if len(v) in (32, 36) else _fail_uuid(v)
        except ValueError:
            pass
    return _fail_uuid(v)


def _fail_uuid(v: Any) -> str:
    raise ValueError(f"'{echo(v)}' is not a valid UUID")


def uuid_or_none(v: Any) -> str | None:
    return None if v is None else uuid_str(v)


def mac(v: Any) -> str:
    if isinstance(v, str):
        m = _MAC_RE.match(v.strip())
        if m:
            octets = [m.group(i) for i in (1, 3, 4, 5, 6, 7)]
            norm = ":".join(o.lower() for o in octets)
            # Neutron refuses only these two; multicast MACs (low bit of the first octet set,
            # e.g. 11:22:33:44:55:66) are valid, and an admin may set them.
            if norm in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
                raise ValueError(f"'{echo(v)}' is not a valid MAC address")
            return norm
    raise ValueError(f"'{echo(v)}' is not a valid MAC address")


def ip(v: Any) -> str:
    """An IP address in canonical text; scope ids (``%...``), blanks and control
    characters are refused (``neutrino.ipam.addresses``)."""
    try:
        return addresses.canonical_ip(v)
    except ValueError:
        pass
    raise ValueError(f"'{echo(v)}' is not a valid IP address")


def ip_or_none(v: Any) -> str | None:
    return None if v is None else ip(v)


def cidr_keep_host(v: Any) -> str:
    """A CIDR as given (host bits kept), with a missing prefix made /32 or /128."""
    try:
        return str(addresses.parse_interface(v))
    except ValueError:
        pass
    raise ValueError(f"'{echo(v)}' is not a valid IP subnet")


def subnet_cidr(v: Any) -> str:
    """A subnet CIDR, canonical (host bits masked)."""
    try:
        return str(addresses.parse_network(v))
    except ValueError:
        pass
    raise ValueError(f"'{echo(v)}' is not a valid IP subnet")


def ip_or_cidr(v: Any) -> str:
    """An address or a CIDR (allowed address pairs accept both)."""
    if isinstance(v, str) and "/" in v:
        return cidr_keep_host(v)
    return ip(v)


def one_of(*choices: Any, nullable: bool = False) -> Conv:
    def conv(v: Any) -> Any:
        if v is None and nullable:
            return None
        if v not in choices:
            raise ValueError(f"'{echo(v)}' is not in {list(choices)}")
        return v

    return conv


def int_one_of(*choices: int) -> Conv:
    """An integer (numeric strings accepted, like neutron-lib's convert_to_int) from ``choices``."""

    def conv(v: Any) -> int:
        n = to_int(v)
        if n not in choices:
            raise ValueError(f"'{echo(v)}' is not in {list(choices)}")
        return n

    return conv


def list_of(item: Conv, *, unique: bool = False, what: str = "") -> Conv:
    def conv(v: Any) -> list[Any]:
        if not isinstance(v, list):
            raise ValueError(f"'{echo(v)}' is not a list")
        out = [_nested(item, x) for x in v]
        if unique:
            seen: set[Any] = set()
            for x in out:
                key = repr(x)
                if key in seen:
                    raise ValueError(f"Duplicate {what or 'item'} '{echo(x)}'")
                seen.add(key)
        return out

    return conv


def fixed_ips(item: Conv) -> Conv:
    """A port's ``fixed_ips`` list; the same ``ip_address`` twice is refused (neutron-lib)."""
    inner = list_of(item)

    def conv(v: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = inner(v)
        seen: set[str] = set()
        for f in out:
            addr = f.get("ip_address")
            if addr is not None:
                if addr in seen:
                    raise ValueError(f"Duplicate IP address '{addr}'")
                seen.add(addr)
        return out

    return conv


def dict_value(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"'{echo(v)}' is not a dictionary")
    return v


def dict_or_none(v: Any) -> dict[str, Any] | None:
    return None if v is None else dict_value(v)


def dict_of(spec: dict[str, Conv], *, required: tuple[str, ...] = ()) -> Conv:
    """A dict with known keys converted by ``spec``; unknown keys rejected."""

    def conv(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise ValueError(f"'{echo(v)}' is not a dictionary")
        unknown = sorted(set(v) - set(spec))
        if unknown:
            raise ValueError(f"Unrecognized attribute(s) '{echo(', '.join(map(str, unknown)))}'")
        for key in required:
            if key not in v:
                raise ValueError(
                    f"Validation of dictionary's keys failed. Expected keys: {set(required)} Provided keys: {set(v)}"
                )
        return {k: _nested(spec[k], x) for k, x in v.items()}

    return conv


def _nested(conv: Conv, v: Any) -> Any:
    """Convert an element of a list or dict: a type error there is a validation
    failure of the whole attribute, not a ``ConversionError``."""
    try:
        return conv(v)
    except ConversionError as exc:
        raise ValueError(str(exc)) from None


def nullable(conv: Conv) -> Conv:
    def inner(v: Any) -> Any:
        return None if v is None else conv(v)

    return inner


def in_range(lo: int, hi: int, conv: Conv = to_int) -> Conv:
    def inner(v: Any) -> int:
        n: int = conv(v)
        if not lo <= n <= hi:
            raise ValueError(f"'{n}' is not in range {lo} through {hi}")
        return n

    return inner


def tag(v: Any) -> str:
    if not isinstance(v, str) or not v or len(v) > 255 or "," in v or "\x00" in v:
        raise ValueError(f"'{echo(v)}' is not a valid tag")
    return v


def any_value(v: Any) -> Any:
    return v

"""What dnsmasq would refuse, refused by the API before anything is written.

The DHCP agent renders subnets and ports into dnsmasq's files
(``neutrino.agents.dhcp.render``).  dnsmasq skips a line of its opts or
hosts file that it cannot parse (it logs ``bad IP address at line N`` and
carries on), so an accepted-but-unusable value would be "half applied": in
the API, silently missing on the wire.  The checks here make such requests
fail with a 400 instead, leaving the database untouched.

Subnets (``check_subnet``, create and update, on the resulting values):

* a host route ``0.0.0.0/0`` (``::/0``) together with a ``gateway_ip``: two
  default routes; the renderer would drop the host route (InvalidInput);
* the same host route twice (``Duplicate hostroute``, as neutron-lib).

(Non-IP ``dns_nameservers``, non-IP nexthops and bad destinations are
already refused by the attribute layer.)

Ports (``check_port``, create and update):

* ``extra_dhcp_opts``: ``opt_name`` is an option dnsmasq knows for the
  option's ``ip_version`` (``KNOWN_V4``/``KNOWN_V6``, the lists printed by
  ``dnsmasq --help dhcp`` / ``--help dhcp6``; any case, as dnsmasq), a number (IPv4 1-254, IPv6
  1-65535), ``client-id``, or any other *option token* (``OPT_TOKEN``: 1-64
  letters, digits, ``_``, ``-``, ``.``, ``+``, starting with a letter, digit or
  ``_``; so no blank, comma, colon, ``=``, quote, newline or NUL).  Neutron
  accepts names dnsmasq does not know (``test_option_1``); so do we, but the
  DHCP agent leaves such an option out of dnsmasq's files (``placements``)
  and the port shows it in ``binding:vif_details`` as ``dhcp_opts_left_out``
  (``left_out``).  The same option (name or number) only once per
  IP version; ``opt_value`` without control characters (a newline would
  split the opts file line) and with balanced double quotes; for options
  whose values are addresses (router, dns-server, ntp-server, ...) every
  comma-separated item an address, all of the option's IP version or all of
  the other one (Neutron does not check values against ``ip_version``, and
  clients send ``server-ip-address: 2015::badd`` without one, i.e. as IPv4);
  a ``client-id`` without commas or blanks (it goes into a hosts-file line);
* blank values (``""`` or only spaces), as neutron-lib's key specs: allowed only for the
  options named exactly ``router`` and ``classless-static-route`` (``BLANK_ALLOWED``; not their
  numbers nor other spellings), any ``ip_version``; any other blank ``opt_value`` or ``opt_name`` is
  400 ``No valid key specs matched for: {...}``.  A blank option means "send no such option": the
  DHCP agent writes the option without data (``tag:port-P,option:router``), which dnsmasq takes as
  "do not send the router option it sends by default"; the port's tag outranks the subnet's, so the
  subnet's gateway is not sent to that port.  (A trailing comma, ``option:router,``, is refused by
  dnsmasq as "bad IP address", so the agent never writes one.)  ``router`` has no DHCPv6 option, so a
  blank ``router`` with ``ip_version: 6`` is accepted and left out like any unknown name;
* ``dns_name`` (hostnames in the hosts files): empty or DNS labels
  (letters, digits, hyphens; 1-63 characters, no leading/trailing hyphen)
  joined by dots, at most 255 characters.

Where the DHCP agent puts each option (``placements``, ``cross_version``) and the option tables
(``KNOWN_V4``/``KNOWN_V6``, ``ADDRESS_V4``/``ADDRESS_V6``) are in ``neutrino.shared.dnsmasq_options``,
which the agent's renderer imports too.

How a port keeps its options (``stored``, ``merged``; as Neutron): every kept entry has an
``ip_version`` (4 when not given) and a value; a create drops entries with a null ``opt_value``; an
update merges the given entries into the port's options by ``(opt_name, ip_version)`` (a null
``opt_value`` removes one) and leaves the others alone, so ``openstack port set
--extra-dhcp-option`` can send only the options it names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from neutrino import errors
from neutrino.resources.types import DhcpOption
from neutrino.shared.dnsmasq_options import (
    ADDRESS_V4,
    ADDRESS_V6,
    CLIENT_ID,
    is_address,
    is_blank,
    option_code,
    placements,
)

#: The only option names whose ``opt_value`` may be blank (neutron-lib's VALID_BLANK_EXTRA_DHCP_OPTS;
#: exact names): a blank value tells dnsmasq not to send the option (see the module doc).
BLANK_ALLOWED = ("router", "classless-static-route")

#: An option name dnsmasq does not know is still accepted when it matches this (see the module doc):
#: it can never be read as more than one field of an opts line, nor as ``tag:``/``option:`` syntax.
OPT_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- subnets ---------------------------------------------------------------------------------
def check_subnet(subnet_id: str, gateway_ip: str | None, host_routes: Iterable[Mapping[str, Any]]) -> None:
    """Refuse host routes dnsmasq's rendering cannot honour (see the module doc); no I/O."""
    seen: set[tuple[str, str]] = set()
    for route in host_routes:
        dest = str(ipaddress.ip_network(route["destination"], strict=False))
        key = (dest, str(ipaddress.ip_address(route["nexthop"])))
        if key in seen:
            shown = {"destination": route["destination"], "nexthop": route["nexthop"]}
            raise errors.bad(f"Invalid input for host_routes. Reason: Duplicate hostroute '{shown}'.")
        seen.add(key)
        if gateway_ip is not None and ipaddress.ip_network(dest).prefixlen == 0:
            raise errors.invalid(
                f"Subnet {subnet_id} has gateway_ip {gateway_ip}: the host route {dest} via "
                f"{route['nexthop']} would be a second default route. Remove the host route, "
                "or set gateway_ip to null to make it the default route"
            )


# --- ports -----------------------------------------------------------------------------------
def check_port(changes: Mapping[str, Any]) -> None:
    """Validate ``extra_dhcp_opts`` and ``dns_name`` when present in ``changes``; no I/O."""
    if changes.get("extra_dhcp_opts"):
        check_extra_dhcp_opts(changes["extra_dhcp_opts"])
    if changes.get("dns_name"):
        check_dns_name(changes["dns_name"])


def check_extra_dhcp_opts(opts: Iterable[Mapping[str, Any]]) -> None:
    """Refuse what dnsmasq could not use (see the module doc); no I/O.  The same option (name or
    number, any case) twice per IP version is refused among entries with a value; entries without
    one (removals in an update, ``merged``) may only not repeat the exact ``(opt_name, ip_version)``,
    so ``[{mtu: null}, {MTU: 9}]`` renames an option in one update."""
    seen: set[tuple[Any, int]] = set()
    exact: set[tuple[str, int]] = set()
    for opt in opts:
        name = opt["opt_name"]
        version = int(opt.get("ip_version") or 4)
        value = opt.get("opt_value")
        if is_blank(name) or (value is not None and is_blank(value) and name not in BLANK_ALLOWED):
            # neutron-lib's wording: no key spec (blank-able name, or non-blank name and value) matched.
            raise errors.invalid(f"No valid key specs matched for: {opt}")
        if name == CLIENT_ID:
            code: int | None = None
            if value is not None and (re.search(r"[\s,]", value) or _CONTROL.search(value)):
                raise _bad_opt(opt, "a client-id must not contain commas, blanks or control characters")
        else:
            code = option_code(name, version)
            if code is None and (not OPT_TOKEN.fullmatch(name) or name.isdigit()):
                known = "IPv4 1-254" if version == 4 else "IPv6 1-65535"
                raise _bad_opt(
                    opt,
                    f"'{name}' is not a DHCP option name (1-64 letters, digits, '_', '-', "
                    "'.' or '+', not starting with '-', '.' or '+') nor an option number, "
                    f"{known}",
                )
            if value is not None:
                _check_value(opt, code, version, value)
        key = (code if code is not None else name.lower(), version)
        if (key in seen and value is not None) or (name, version) in exact:
            raise _bad_opt(opt, f"option '{name}' is given more than once for IPv{version}")
        exact.add((name, version))
        if value is not None:
            seen.add(key)


def stored(opts: Iterable[Mapping[str, Any]]) -> list[DhcpOption]:
    """A port's options as kept and shown (``opt_name``, ``opt_value``, ``ip_version``), in order;
    pure.  ``ip_version`` is always there (4 when not given); an entry without a value (null
    ``opt_value``) is dropped, as Neutron stores no such option on create."""
    return [
        {"opt_name": o["opt_name"], "opt_value": o["opt_value"], "ip_version": int(o.get("ip_version") or 4)}
        for o in opts
        if o.get("opt_value") is not None
    ]


def merged(current: Iterable[Mapping[str, Any]], given: Iterable[Mapping[str, Any]]) -> list[DhcpOption]:
    """The options a port update leaves on the port, as Neutron merges them; pure.

    Each given entry is matched to a current option by ``(opt_name, ip_version)`` (exact name; a
    missing ``ip_version`` is 4): with a value it replaces the value, with a null ``opt_value`` (or
    none) it removes the option; unmatched, with a value it is added at the end, without one it is
    ignored.  Options not mentioned stay.  ``given`` empty changes nothing.  The result is
    ``stored`` form; the caller checks it (``check_extra_dhcp_opts``) like a new list.
    """
    out = {(o["opt_name"], o["ip_version"]): o for o in stored(current)}
    for opt in given:
        key = (opt["opt_name"], int(opt.get("ip_version") or 4))
        if opt.get("opt_value") is None:
            out.pop(key, None)
        elif key in out:
            out[key] = {**out[key], "opt_value": opt["opt_value"]}
        else:
            out[key] = {"opt_name": key[0], "opt_value": opt["opt_value"], "ip_version": key[1]}
    return list(out.values())


def left_out(opts: Iterable[Mapping[str, Any]]) -> list[str]:
    """``name/ipv<version>`` of each option with a value the DHCP agent leaves out, in order
    (``placements``; pure)."""
    return placements((o["opt_name"], o.get("opt_value"), int(o.get("ip_version") or 4)) for o in opts)[1]


def _check_value(opt: Mapping[str, Any], code: int | None, version: int, value: str) -> None:
    if _CONTROL.search(value):
        raise _bad_opt(opt, "opt_value must not contain newlines or other control characters")
    if value.count('"') % 2:
        raise _bad_opt(opt, "opt_value has an unbalanced double quote")
    if code in (ADDRESS_V4 if version == 4 else ADDRESS_V6) and not is_blank(value):
        items = [item.strip() for item in value.split(",")]
        bad = next((item for item in items if not (is_address(item, 4) or is_address(item, 6))), None)
        if bad is not None:
            raise _bad_opt(
                opt,
                f"'{bad}' is not an IPv{version} address, nor an IPv{10 - version} address "
                f"(option '{opt['opt_name']}' takes a comma-separated list of addresses)",
            )
        if not (
            all(is_address(item, version) for item in items) or all(is_address(item, 10 - version) for item in items)
        ):
            raise _bad_opt(opt, f"option '{opt['opt_name']}' mixes IPv4 and IPv6 addresses; give all of one IP version")


def _bad_opt(opt: Mapping[str, Any], reason: str) -> errors.InvalidInput:
    shown = {k: opt[k] for k in ("opt_name", "opt_value", "ip_version") if k in opt}
    return errors.invalid(f"Invalid extra_dhcp_opt {shown}: {reason}")


def check_dns_name(name: str) -> None:
    """A hostname (PQDN) or FQDN, as neutron's dns-integration accepts them."""
    reason = None
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if len(name) > 255:
        reason = "the name is longer than 255 characters"
    elif any(not label for label in labels):
        reason = "Encountered an empty component"
    else:
        bad = [label for label in labels if not _LABEL.match(label)]
        if bad:
            reason = (
                f"'{bad[0]}' is not a valid DNS label: 1 to 63 letters, digits or hyphens, "
                "not starting or ending with a hyphen"
            )
        elif name.endswith(".") and labels[-1].isdigit():
            reason = "The top level domain of an FQDN cannot be all numeric"
    if reason:
        raise errors.bad(f"Invalid input for dns_name. Reason: '{name}' not a valid PQDN or FQDN. Reason: {reason}.")


__all__ = [
    "BLANK_ALLOWED",
    "OPT_TOKEN",
    "check_dns_name",
    "check_extra_dhcp_opts",
    "check_port",
    "check_subnet",
    "left_out",
    "merged",
    "stored",
]

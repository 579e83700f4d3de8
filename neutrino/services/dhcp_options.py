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

Where the DHCP agent puts each option (``placements``, shared by the agent's
renderer and the API's ``left_out``): an address option whose addresses are
of the other IP version (``cross_version``) is served as the option of the
same name of that version when dnsmasq knows one (``dns-server``,
``ntp-server``, ``nis-server``, ``nis+-server``, ``sip-server``) and the port
does not set that option itself; otherwise (``server-ip-address``,
``router``, ``sntp-server``, ...) it is left out and listed like an unknown
name.  dnsmasq refuses an IPv4 option with an IPv6 address ("bad IP
address"), so such a line is never written.

How a port keeps its options (``stored``, ``merged``; as Neutron): every kept entry has an
``ip_version`` (4 when not given) and a value; a create drops entries with a null ``opt_value``; an
update merges the given entries into the port's options by ``(opt_name, ip_version)`` (a null
``opt_value`` removes one) and leaves the others alone, so ``openstack port set
--extra-dhcp-option`` can send only the options it names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from neutrino import errors

#: IPv4 options dnsmasq 2.90 knows by name (``dnsmasq --help dhcp``): name -> code.
KNOWN_V4: dict[str, int] = {
    "netmask": 1,
    "time-offset": 2,
    "router": 3,
    "dns-server": 6,
    "log-server": 7,
    "lpr-server": 9,
    "boot-file-size": 13,
    "domain-name": 15,
    "swap-server": 16,
    "root-path": 17,
    "extension-path": 18,
    "ip-forward-enable": 19,
    "non-local-source-routing": 20,
    "policy-filter": 21,
    "max-datagram-reassembly": 22,
    "default-ttl": 23,
    "mtu": 26,
    "all-subnets-local": 27,
    "router-discovery": 31,
    "router-solicitation": 32,
    "static-route": 33,
    "trailer-encapsulation": 34,
    "arp-timeout": 35,
    "ethernet-encap": 36,
    "tcp-ttl": 37,
    "tcp-keepalive": 38,
    "nis-domain": 40,
    "nis-server": 41,
    "ntp-server": 42,
    "netbios-ns": 44,
    "netbios-dd": 45,
    "netbios-nodetype": 46,
    "netbios-scope": 47,
    "x-windows-fs": 48,
    "x-windows-dm": 49,
    "T1": 58,
    "T2": 59,
    "vendor-class": 60,
    "nis+-domain": 64,
    "nis+-server": 65,
    "tftp-server": 66,
    "bootfile-name": 67,
    "mobile-ip-home": 68,
    "smtp-server": 69,
    "pop3-server": 70,
    "nntp-server": 71,
    "irc-server": 74,
    "user-class": 77,
    "rapid-commit": 80,
    "client-arch": 93,
    "client-interface-id": 94,
    "client-machine-id": 97,
    "posix-timezone": 100,
    "tzdb-timezone": 101,
    "ipv6-only": 108,
    "domain-search": 119,
    "sip-server": 120,
    "classless-static-route": 121,
    "vendor-id-encap": 125,
    "tftp-server-address": 150,
    "server-ip-address": 255,
}
#: IPv6 options dnsmasq 2.90 knows by name (``dnsmasq --help dhcp6``): name -> code.
KNOWN_V6: dict[str, int] = {
    "sip-server-domain": 21,
    "sip-server": 22,
    "dns-server": 23,
    "domain-search": 24,
    "nis-server": 27,
    "nis+-server": 28,
    "nis-domain": 29,
    "nis+-domain": 30,
    "sntp-server": 31,
    "information-refresh-time": 32,
    "posix-timezone": 41,
    "tzdb-timezone": 42,
    "ntp-server": 56,
    "bootfile-url": 59,
    "bootfile-param": 60,
}
#: Option codes whose values dnsmasq parses as address lists ("bad IP address" otherwise;
#: found by running ``dnsmasq --test`` on each known option with a non-address value).
ADDRESS_V4 = frozenset({1, 3, 6, 7, 9, 16, 21, 32, 33, 41, 42, 44, 45, 48, 49, 65, 68, 69, 70, 71, 74, 150, 255})
ADDRESS_V6 = frozenset({22, 23, 27, 28, 31})
_ADDRESS = {4: ADDRESS_V4, 6: ADDRESS_V6}
_LOWER_V4 = {k.lower(): v for k, v in KNOWN_V4.items()}
_LOWER_V6 = {k.lower(): v for k, v in KNOWN_V6.items()}
#: Not a dnsmasq option: the DHCP agent puts it into the hosts file (``id:<client id>``).
CLIENT_ID = "client-id"
#: The only option names whose ``opt_value`` may be blank (neutron-lib's VALID_BLANK_EXTRA_DHCP_OPTS;
#: exact names): a blank value tells dnsmasq not to send the option (see the module doc).
BLANK_ALLOWED = ("router", "classless-static-route")

#: An option name dnsmasq does not know is still accepted when it matches this (see the module doc):
#: it can never be read as more than one field of an opts line, nor as ``tag:``/``option:`` syntax.
OPT_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- subnets ---------------------------------------------------------------------------------
def check_subnet(subnet_id: str, gateway_ip: str | None, host_routes: Iterable[dict[str, Any]]) -> None:
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
def check_port(changes: dict[str, Any]) -> None:
    """Validate ``extra_dhcp_opts`` and ``dns_name`` when present in ``changes``; no I/O."""
    if changes.get("extra_dhcp_opts"):
        check_extra_dhcp_opts(changes["extra_dhcp_opts"])
    if changes.get("dns_name"):
        check_dns_name(changes["dns_name"])


def option_code(name: str, version: int) -> int | None:
    """The option code of ``name`` (a known name or a number) for ``version``, else None."""
    if name.isdigit() and name.isascii():
        code = int(name)
        return code if (1 <= code <= 254 if version == 4 else 1 <= code <= 65535) else None
    return (_LOWER_V4 if version == 4 else _LOWER_V6).get(name.lower())  # dnsmasq ignores case


def check_extra_dhcp_opts(opts: list[dict[str, Any]]) -> None:
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


def cross_version(name: str, version: int, value: str) -> bool:
    """Whether ``value`` of address option ``name`` (IPv``version``) lists addresses of the other IP
    version only (the API accepts that; see the module doc); pure."""
    code = None if name == CLIENT_ID else option_code(name, version)
    return code in _ADDRESS.get(version, ()) and _addresses(value, 10 - version)


def placements(opts: Iterable[tuple[str, str | None, int]]) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Where the DHCP agent puts a port's extra DHCP options ``(name, value, ip_version)``; pure.

    Returns ``(served, left_out)``.  ``served`` lists ``(name, value, version)`` as dnsmasq gets them,
    in the given order; ``version`` is the other one for a ``cross_version`` value, moved to the
    same-named option of that version.  ``left_out`` lists ``name/ipv<version>`` (as given) of the
    options with a value that are not served: names dnsmasq does not know (a blank value of a known
    option is served as given: the option without data, ``is_blank``); ``cross_version`` values
    whose name dnsmasq does not know for the other version (or is a number: codes differ per version),
    or whose target option the port also sets itself; and, as a second line of defence, address
    options whose value dnsmasq would refuse as "bad IP address".  Options without a value (null
    ``opt_value``) are in neither list.
    """
    given = [(str(name), value, int(version or 4)) for name, value, version in opts if value is not None]
    own = {(option_code(n, v), v) for n, val, v in given if n != CLIENT_ID and _as_given(n, v, val)}
    served: list[tuple[str, str, int]] = []
    out: list[str] = []
    for name, value, version in given:
        target = version
        if version not in _ADDRESS:  # the API allows 4 and 6 only
            out.append(f"{name}/ipv{version}")
            continue
        if name != CLIENT_ID and not _as_given(name, version, value):
            target = 10 - version
            code = None if name.isdigit() else option_code(name, target)
            if not cross_version(name, version, value) or code is None or (code, target) in own:
                out.append(f"{name}/ipv{version}")
                continue
        served.append((name, value, target))
    return served, out


def _as_given(name: str, version: int, value: str) -> bool:
    """dnsmasq takes option ``name`` of IPv``version`` with ``value`` (not ``client-id``); a blank
    value is the option without data, which dnsmasq takes for every option it knows."""
    code = option_code(name, version)
    return code is not None and (code not in _ADDRESS.get(version, ()) or is_blank(value) or _addresses(value, version))


def is_blank(value: str) -> bool:
    """``value`` is empty or only spaces (neutron-lib's "blank string"); the DHCP agent writes an
    option with a blank value without data."""
    return not value.strip(" ")


def _addresses(value: str, version: int) -> bool:
    """``value`` is a comma-separated list of IPv``version`` addresses."""
    return all(_is_address(item.strip(), version) for item in value.split(","))


def stored(opts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A port's options as kept and shown (``opt_name``, ``opt_value``, ``ip_version``), in order;
    pure.  ``ip_version`` is always there (4 when not given); an entry without a value (null
    ``opt_value``) is dropped, as Neutron stores no such option on create."""
    return [
        {"opt_name": o["opt_name"], "opt_value": o["opt_value"], "ip_version": int(o.get("ip_version") or 4)}
        for o in opts
        if o.get("opt_value") is not None
    ]


def merged(current: Iterable[dict[str, Any]], given: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
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
            out[key] = dict(out[key], opt_value=opt["opt_value"])
        else:
            out[key] = {"opt_name": key[0], "opt_value": opt["opt_value"], "ip_version": key[1]}
    return list(out.values())


def left_out(opts: Iterable[dict[str, Any]]) -> list[str]:
    """``name/ipv<version>`` of each option with a value the DHCP agent leaves out, in order
    (``placements``; pure)."""
    return placements((o["opt_name"], o.get("opt_value"), int(o.get("ip_version") or 4)) for o in opts)[1]


def _check_value(opt: dict[str, Any], code: int | None, version: int, value: str) -> None:
    if _CONTROL.search(value):
        raise _bad_opt(opt, "opt_value must not contain newlines or other control characters")
    if value.count('"') % 2:
        raise _bad_opt(opt, "opt_value has an unbalanced double quote")
    if code in (ADDRESS_V4 if version == 4 else ADDRESS_V6) and not is_blank(value):
        items = [item.strip() for item in value.split(",")]
        bad = next((item for item in items if not (_is_address(item, 4) or _is_address(item, 6))), None)
        if bad is not None:
            raise _bad_opt(
                opt,
                f"'{bad}' is not an IPv{version} address, nor an IPv{10 - version} address "
                f"(option '{opt['opt_name']}' takes a comma-separated list of addresses)",
            )
        if not (
            all(_is_address(item, version) for item in items) or all(_is_address(item, 10 - version) for item in items)
        ):
            raise _bad_opt(opt, f"option '{opt['opt_name']}' mixes IPv4 and IPv6 addresses; give all of one IP version")


def _is_address(text: str, version: int) -> bool:
    """``text`` is an IPv``version`` address without a zone (IPv6 optionally in brackets)."""
    if version == 6 and text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return addr.version == version and getattr(addr, "scope_id", None) is None


def _bad_opt(opt: dict[str, Any], reason: str) -> errors.InvalidInput:
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
    "ADDRESS_V4",
    "ADDRESS_V6",
    "BLANK_ALLOWED",
    "CLIENT_ID",
    "KNOWN_V4",
    "KNOWN_V6",
    "OPT_TOKEN",
    "check_dns_name",
    "check_extra_dhcp_opts",
    "check_port",
    "check_subnet",
    "cross_version",
    "is_blank",
    "left_out",
    "merged",
    "option_code",
    "placements",
    "stored",
]

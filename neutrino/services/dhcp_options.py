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
  DHCP agent leaves such an option out of dnsmasq's files (``renderable``)
  and the port shows it in ``binding:vif_details`` as ``dhcp_opts_left_out``
  (``left_out``).  The same option (name or number) only once per
  IP version; ``opt_value`` without control characters (a newline would
  split the opts file line) and with balanced double quotes; for options
  whose values are addresses (router, dns-server, ntp-server, ...) every
  comma-separated item an address of the option's IP version; a
  ``client-id`` without commas or blanks (it goes into a hosts-file line);
* ``dns_name`` (hostnames in the hosts files): empty or DNS labels
  (letters, digits, hyphens; 1-63 characters, no leading/trailing hyphen)
  joined by dots, at most 255 characters.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

from neutrino import errors

#: IPv4 options dnsmasq 2.90 knows by name (``dnsmasq --help dhcp``): name -> code.
KNOWN_V4: dict[str, int] = {
    "netmask": 1, "time-offset": 2, "router": 3, "dns-server": 6, "log-server": 7, "lpr-server": 9,
    "boot-file-size": 13, "domain-name": 15, "swap-server": 16, "root-path": 17, "extension-path": 18,
    "ip-forward-enable": 19, "non-local-source-routing": 20, "policy-filter": 21,
    "max-datagram-reassembly": 22, "default-ttl": 23, "mtu": 26, "all-subnets-local": 27,
    "router-discovery": 31, "router-solicitation": 32, "static-route": 33, "trailer-encapsulation": 34,
    "arp-timeout": 35, "ethernet-encap": 36, "tcp-ttl": 37, "tcp-keepalive": 38, "nis-domain": 40,
    "nis-server": 41, "ntp-server": 42, "netbios-ns": 44, "netbios-dd": 45, "netbios-nodetype": 46,
    "netbios-scope": 47, "x-windows-fs": 48, "x-windows-dm": 49, "T1": 58, "T2": 59, "vendor-class": 60,
    "nis+-domain": 64, "nis+-server": 65, "tftp-server": 66, "bootfile-name": 67, "mobile-ip-home": 68,
    "smtp-server": 69, "pop3-server": 70, "nntp-server": 71, "irc-server": 74, "user-class": 77,
    "rapid-commit": 80, "client-arch": 93, "client-interface-id": 94, "client-machine-id": 97,
    "posix-timezone": 100, "tzdb-timezone": 101, "ipv6-only": 108, "domain-search": 119, "sip-server": 120,
    "classless-static-route": 121, "vendor-id-encap": 125, "tftp-server-address": 150,
    "server-ip-address": 255,
}
#: IPv6 options dnsmasq 2.90 knows by name (``dnsmasq --help dhcp6``): name -> code.
KNOWN_V6: dict[str, int] = {
    "sip-server-domain": 21, "sip-server": 22, "dns-server": 23, "domain-search": 24, "nis-server": 27,
    "nis+-server": 28, "nis-domain": 29, "nis+-domain": 30, "sntp-server": 31,
    "information-refresh-time": 32, "posix-timezone": 41, "tzdb-timezone": 42, "ntp-server": 56,
    "bootfile-url": 59, "bootfile-param": 60,
}
#: Option codes whose values dnsmasq parses as address lists ("bad IP address" otherwise;
#: found by running ``dnsmasq --test`` on each known option with a non-address value).
ADDRESS_V4 = frozenset({1, 3, 6, 7, 9, 16, 21, 32, 33, 41, 42, 44, 45, 48, 49, 65, 68, 69, 70, 71, 74, 150,
                        255})
ADDRESS_V6 = frozenset({22, 23, 27, 28, 31})
_LOWER_V4 = {k.lower(): v for k, v in KNOWN_V4.items()}
_LOWER_V6 = {k.lower(): v for k, v in KNOWN_V6.items()}
#: Not a dnsmasq option: the DHCP agent puts it into the hosts file (``id:<client id>``).
CLIENT_ID = "client-id"

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
                "or set gateway_ip to null to make it the default route")


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
    return (_LOWER_V4 if version == 4 else _LOWER_V6).get(name.lower())   # dnsmasq ignores case


def check_extra_dhcp_opts(opts: list[dict[str, Any]]) -> None:
    seen: set[tuple[Any, int]] = set()
    for opt in opts:
        name = opt["opt_name"]
        version = int(opt.get("ip_version") or 4)
        value = opt.get("opt_value")
        if name == CLIENT_ID:
            code: int | None = None
            if value is not None and (re.search(r"[\s,]", value) or _CONTROL.search(value)):
                raise _bad_opt(opt, "a client-id must not contain commas, blanks or control characters")
        else:
            code = option_code(name, version)
            if code is None and (not OPT_TOKEN.fullmatch(name) or name.isdigit()):
                known = "IPv4 1-254" if version == 4 else "IPv6 1-65535"
                raise _bad_opt(opt, f"'{name}' is not a DHCP option name (1-64 letters, digits, '_', '-', "
                                    "'.' or '+', not starting with '-', '.' or '+') nor an option number, "
                                    f"{known}")
            if value is not None:
                _check_value(opt, code, version, value)
        key = (code if code is not None else name.lower(), version)
        if key in seen:
            raise _bad_opt(opt, f"option '{name}' is given more than once for IPv{version}")
        seen.add(key)


def renderable(name: str, version: int) -> bool:
    """Whether the DHCP agent writes option ``name`` of IP ``version`` into dnsmasq's files
    (``client-id`` goes into the hosts file; a name dnsmasq does not know is left out)."""
    return name == CLIENT_ID or option_code(name, version) is not None


def left_out(opts: Iterable[dict[str, Any]]) -> list[str]:
    """``name/ipv<version>`` of each option with a value the DHCP agent leaves out, in order (pure)."""
    out = []
    for opt in opts:
        version = int(opt.get("ip_version") or 4)
        if opt.get("opt_value") is not None and not renderable(str(opt["opt_name"]), version):
            out.append(f"{opt['opt_name']}/ipv{version}")
    return out


def _check_value(opt: dict[str, Any], code: int | None, version: int, value: str) -> None:
    if _CONTROL.search(value):
        raise _bad_opt(opt, "opt_value must not contain newlines or other control characters")
    if value.count('"') % 2:
        raise _bad_opt(opt, "opt_value has an unbalanced double quote")
    if code in (ADDRESS_V4 if version == 4 else ADDRESS_V6):
        for item in value.split(","):
            if not _is_address(item.strip(), version):
                raise _bad_opt(opt, f"'{item.strip()}' is not an IPv{version} address "
                                    f"(option '{opt['opt_name']}' takes a comma-separated list of addresses)")


def _is_address(text: str, version: int) -> bool:
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
            reason = (f"'{bad[0]}' is not a valid DNS label: 1 to 63 letters, digits or hyphens, "
                      "not starting or ending with a hyphen")
        elif name.endswith(".") and labels[-1].isdigit():
            reason = "The top level domain of an FQDN cannot be all numeric"
    if reason:
        raise errors.bad(f"Invalid input for dns_name. Reason: '{name}' not a valid PQDN or FQDN. "
                         f"Reason: {reason}.")


__all__ = ["ADDRESS_V4", "ADDRESS_V6", "CLIENT_ID", "KNOWN_V4", "KNOWN_V6", "OPT_TOKEN", "check_dns_name",
           "check_extra_dhcp_opts", "check_port", "check_subnet", "left_out", "option_code", "renderable"]

"""The DHCP options dnsmasq knows, and where the DHCP agent puts a port's options; pure.

Shared by the server (``neutrino.services.dhcp_options`` validates ``extra_dhcp_opts`` and lists the
options left out in ``binding:vif_details``) and the DHCP agent (``neutrino.agents.dhcp.render`` writes
dnsmasq's files), so that both read the same tables.  Standard library only.

Where the DHCP agent puts each option (``placements``, shared by the agent's
renderer and the API's ``left_out``): an address option whose addresses are
of the other IP version (``cross_version``) is served as the option of the
same name of that version when dnsmasq knows one (``dns-server``,
``ntp-server``, ``nis-server``, ``nis+-server``, ``sip-server``) and the port
does not set that option itself; otherwise (``server-ip-address``,
``router``, ``sntp-server``, ...) it is left out and listed like an unknown
name.  dnsmasq refuses an IPv4 option with an IPv6 address ("bad IP
address"), so such a line is never written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

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


def option_code(name: str, version: int) -> int | None:
    """The option code of ``name`` (a known name or a number) for ``version``, else None."""
    if name.isdigit() and name.isascii():
        code = int(name)
        return code if (1 <= code <= 254 if version == 4 else 1 <= code <= 65535) else None
    return (_LOWER_V4 if version == 4 else _LOWER_V6).get(name.lower())  # dnsmasq ignores case


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
    return all(is_address(item.strip(), version) for item in value.split(","))


def is_address(text: str, version: int) -> bool:
    """``text`` is an IPv``version`` address without a zone (IPv6 optionally in brackets)."""
    if version == 6 and text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return addr.version == version and getattr(addr, "scope_id", None) is None


__all__ = [
    "ADDRESS_V4",
    "ADDRESS_V6",
    "CLIENT_ID",
    "KNOWN_V4",
    "KNOWN_V6",
    "cross_version",
    "is_address",
    "is_blank",
    "option_code",
    "placements",
]

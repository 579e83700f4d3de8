"""Cross-option checks of a loaded configuration.

``neutrino.config`` parses each option on its own (types, unknown names);
``validate`` checks what no single option's type can express: ports and
addresses, choices, options that must agree with each other, and paths that
the unprivileged daemons must be able to reach.  ``neutrino`` refuses to start
(and ``neutrino check-config`` reports) while it returns any problem.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from neutrino.config import Config

#: The network types ``[ml2] type_drivers`` may name.
TYPE_DRIVERS = ("local", "flat", "vlan", "vxlan", "geneve")
#: What ``[DEFAULT] roles`` (and ``neutrino up --role``) may name.
ROLE_CHOICES = ("all", "controller", "network", "compute")


def _check_range(text: str, lo: int, hi: int) -> str | None:
    a, sep, b = text.partition(":")
    try:
        low, high = int(a), int(b)
    except ValueError:
        return f"{text!r} is not min:max"
    if not sep or not (lo <= low <= high <= hi):
        return f"{text!r} is not a range within {lo}:{hi}"
    return None


def validate(cfg: Config) -> list[str]:
    """Every cross-option problem of ``cfg``, one message each ([] when it can be used)."""
    errs: list[str] = []
    d, ident, ml2 = cfg.default, cfg.identity, cfg.ml2
    for sec, bind_host, bind_port in (
        ("DEFAULT", d.bind_host, d.bind_port),
        ("identity", ident.bind_host, ident.bind_port),
    ):
        if not 1 <= bind_port <= 65535:
            errs.append(f"[{sec}] bind_port = {bind_port} is not a TCP port")
        try:
            ipaddress.ip_address(bind_host)
        except ValueError:
            errs.append(f"[{sec}] bind_host = {bind_host!r} is not an IP address")
    if d.bind_port == ident.bind_port and (
        d.bind_host == ident.bind_host
        or "0.0.0.0" in (d.bind_host, ident.bind_host)
        or "::" in (d.bind_host, ident.bind_host)
    ):
        errs.append(f"[DEFAULT] bind_port and [identity] bind_port are both {d.bind_port}")
    if cfg.ovs.datapath_type not in ("system", "netdev", "auto"):
        errs.append(f"[ovs] datapath_type = {cfg.ovs.datapath_type!r}: choose system, netdev or auto")
    if cfg.metadata.http_tokens not in ("optional", "required"):
        errs.append(f"[metadata] http_tokens = {cfg.metadata.http_tokens!r}: choose optional or required")
    if d.api_workers < 1:
        errs.append(f"[DEFAULT] api_workers = {d.api_workers}: must be at least 1")
    if d.global_physnet_mtu < 68:
        errs.append(f"[DEFAULT] global_physnet_mtu = {d.global_physnet_mtu} is too small")
    if d.agent_down_time < 1:
        errs.append("[DEFAULT] agent_down_time must be positive")
    bad_roles = [r for r in d.roles if r not in ROLE_CHOICES]
    if bad_roles or not d.roles:
        errs.append(f"[DEFAULT] roles: {', '.join(bad_roles) or '(empty)'}: choose from {', '.join(ROLE_CHOICES)}")
    elif not ({"all", "controller"} & set(d.roles)) and not d.server_url:
        errs.append(
            f"[DEFAULT] roles = {','.join(d.roles)} without controller: set [DEFAULT] server_url "
            "(the controller's Neutron API, e.g. http://controller:9696)"
        )
    if d.server_url and not d.server_url.startswith(("http://", "https://")):
        errs.append(f"[DEFAULT] server_url = {d.server_url!r} is not an http(s) URL")
    unknown = [t for t in ml2.type_drivers if t not in TYPE_DRIVERS]
    if unknown:
        errs.append(f"[ml2] type_drivers: unknown {', '.join(unknown)} (known: {', '.join(TYPE_DRIVERS)})")
    missing = [t for t in ml2.tenant_network_types if t not in ml2.type_drivers]
    if missing:
        errs.append(f"[ml2] tenant_network_types: {', '.join(missing)} not in type_drivers")
    if ml2.overlay_ip_version not in (4, 6):
        errs.append(f"[ml2] overlay_ip_version = {ml2.overlay_ip_version}: must be 4 or 6")
    if ml2.external_network_type and ml2.external_network_type not in ml2.type_drivers:
        errs.append(f"[ml2] external_network_type = {ml2.external_network_type} not in type_drivers")
    for sec, ranges in (
        ("ml2_type_vxlan", cfg.ml2_type_vxlan.vni_ranges),
        ("ml2_type_geneve", cfg.ml2_type_geneve.vni_ranges),
    ):
        for r in ranges:
            msg = _check_range(r, 1, 2**24 - 1)
            if msg:
                errs.append(f"[{sec}] vni_ranges: {msg}")
    for entry in cfg.ml2_type_vlan.network_vlan_ranges:
        physnet, sep, rng = entry.partition(":")
        if not physnet:
            errs.append(f"[ml2_type_vlan] network_vlan_ranges: {entry!r} has no physnet")
        elif sep:
            msg = _check_range(rng, 1, 4094)
            if msg:
                errs.append(f"[ml2_type_vlan] network_vlan_ranges: {physnet}: {msg}")
    if cfg.token.expiration < 1:
        errs.append("[token] expiration must be positive")
    url = cfg.database.connection
    if url and not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        errs.append(f"[database] connection = {url!r}: only sqlite:/// and postgresql:// URLs")
    if cfg.feed.retention < 1:
        errs.append("[feed] retention must be positive")
    errs += _unreachable_in_state_dir(cfg)
    return errs


def _unreachable_in_state_dir(cfg: Config) -> list[str]:
    """Paths that unprivileged daemons must reach cannot be in the state directory (mode 0700)."""
    state = cfg.state_dir.absolute()
    errs = []
    md = cfg.metadata
    proxy_socket = md.metadata_proxy_socket if md.metadata_proxy_user not in ("root", "0") else ""
    for sec, name, path, who in (
        ("DEFAULT", "dhcp_confs", cfg.default.dhcp_confs, "dnsmasq (user nobody)"),
        ("metadata", "metadata_proxy_socket", proxy_socket, "the haproxy metadata proxies (metadata_proxy_user)"),
    ):
        if path and (Path(path).absolute() == state or state in Path(path).absolute().parents):
            errs.append(
                f"[{sec}] {name} = {path} is inside the state directory, which only its owner "
                f"may enter: {who} could not reach it"
            )
    return errs

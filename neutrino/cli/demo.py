"""``neutrino demo``: the seed's Lab 10 on a running cloud, then a table of checks.

As admin: a flat external network ``flat-network`` on physnet ``physnet`` (the
lab host's wire, its subnet taken from ``[lab] cidr``, gateway = the lab host).
As the ``demo`` user: a VXLAN network ``vxlan-network`` (172.18.0.0/24), the
router ``demo-router`` (gateway on ``flat-network``, interface on the VXLAN
subnet), the key pair ``demo-key`` and a user-data file (both in
``STATE/demo/``), the default security group opened for ICMP and SSH
(ingress), ``demo-instance-1`` and ``-2`` on the VXLAN network,
``demo-instance-3`` on the flat network, and a floating IP on
``demo-instance-1``.  The compute API gives each instance's port the
instance's host name as ``dns_name`` (as Nova does when Neutron has DNS
integration), so neighbours resolve each other by name.

Idempotent: what exists (by name) is reused; what the demo itself created is
recorded in ``STATE/demo/created.json``, and ``--clean`` deletes exactly that.
Everything goes through the public APIs (Keystone, Neutron, Nova, Glance)
with the state dir's ``admin-openrc`` / ``demo-openrc``.

The checks run from inside the instances (their ``vm-<id>`` namespaces) and
from the lab host namespace; each prints the command a user runs to see the
same.  A tiny HTTP server in the lab host namespace (``demo-lab-http`` in
``STATE/run``, stopped by ``--clean`` and by ``neutrino down``) answers every
request with the address it came from: that is how SNAT is seen.

This module is the subcommand; the parts are ``demo_lab`` (building and
removing the objects), ``demo_checks`` (the checks and their table),
``demo_client`` (the APIs as one user) and ``progress`` (step lines).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from neutrino.cli.layout import DEFAULT_STATE_DIR, CLIError, layout_of, load_config, self_command
from neutrino.cli.progress import Progress


def _command(layout: Any, sub: str) -> str:
    """How a user runs ``neutrino SUB`` on this state dir."""
    state = "" if layout.root == Path(DEFAULT_STATE_DIR) else f" --state-dir {shlex.quote(str(layout.root))}"
    return f"{self_command()} {sub}{state}"


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported when the demo runs: the HTTP client and the lab's modules would otherwise load
    # with every `neutrino` command, the agents' included.
    import httpx

    from neutrino.cli.demo_checks import plan_checks, render_table, run_checks
    from neutrino.cli.demo_client import DemoError
    from neutrino.cli.demo_lab import FLAT_NET, ROUTER, build, clean

    layout = layout_of(args)
    if not (layout.root / "admin-openrc").exists():
        raise CLIError(f"no cloud in {layout.root} (run neutrino up first, or pass --state-dir)")
    cfg = load_config(layout.conf, layout.root)
    progress = Progress(quiet=False)
    try:
        if args.clean:
            problems = clean(layout, progress)
            if problems:
                raise CLIError("demo not completely removed:\n  " + "\n  ".join(problems))
            print("demo removed")
            return 0
        lab = build(layout, cfg, progress, args.boot_timeout)
    except (DemoError, httpx.HTTPError) as exc:
        raise CLIError(str(exc)) from None
    checks = plan_checks(lab, _command(layout, "console"), f"ip netns exec {lab.lab_netns}")
    progress.say(f"running {len(checks)} checks (each retried for up to {args.check_timeout:g} s)")
    run_checks(checks, args.check_timeout, progress)
    total = time.monotonic() - progress.t0
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": round(total, 2),
                    "ok": not failed,
                    **lab.summary(),
                    "checks": [
                        {
                            "name": c.name,
                            "ok": c.ok,
                            "detail": c.detail,
                            "command": c.command,
                            "seconds": round(c.seconds, 2),
                        }
                        for c in checks
                    ],
                },
                indent=1,
            )
        )
    else:
        print()
        for name, s in sorted(lab.servers.items()):
            extra = f", floating IP {lab.fip['floating_ip_address']}" if name == "demo-instance-1" else ""
            print(f"{name}: {s['status']} on {s.get('OS-EXT-SRV-ATTR:host')}, {lab.ip(name)}{extra}")
        print(
            f"router {ROUTER}: gateway {lab.gateway_ip} on {FLAT_NET}; lab host {lab.lab_ip} "
            f"(namespace {lab.lab_netns})"
        )
        print()
        print(render_table(checks))
        print()
        print(
            f"{len(checks) - len(failed)}/{len(checks)} checks passed in {total:.1f} s; "
            f"remove the demo with: {_command(layout, 'demo')} --clean"
        )
    return 1 if failed else 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="build the seed's Lab 10 and check it works",
        description="Build the seed's Lab 10 on the running cloud (as admin and the demo "
        "user: flat external network to the lab host, VXLAN network, router, three "
        "instances, a floating IP, key pair, user data, ICMP and SSH open) and print a "
        "table of checks, each with the command to see it yourself.  Idempotent.  Exit "
        "status 1 if a check fails.",
    )
    p.add_argument("--clean", action="store_true", help="remove everything the demo created")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--boot-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long instances may take to become ACTIVE (default: %(default)s)",
    )
    p.add_argument(
        "--check-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long each check is retried (default: %(default)s)",
    )
    p.set_defaults(func=cmd_demo)

"""``neutrino pki``: the project's certificate authority on the command line (docs/tls.md).

    neutrino pki init                    create the CA (root + intermediate), ca.pem and crl.pem
    neutrino pki issue --host H --role R a client certificate for node H, as a bundle to import there
    neutrino pki issue --server --san N  a server certificate (this node's, or a bundle with --bundle)
    neutrino pki show [FILE...]          the chain of each certificate file, with expiry warnings
    neutrino pki rotate                  new keys and certificates for server.pem and node.pem
    neutrino pki revoke SERIAL|--host H  revoke, rewrite the CRL, tell the server
    neutrino pki import BUNDLE           install a bundle on a node

Everything lives in ``STATE/pki`` (``neutrino.pki.paths``); the CA in ``STATE/pki/ca``.
After ``rotate``, ``revoke`` and ``issue --server`` the running API server (its pid in
``STATE/run/server.pid``) gets SIGHUP so that it loads the new files for new connections;
it also notices changed files by itself within ``[pki] reload_interval``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

from cryptography.x509.oid import NameOID

from neutrino.cli import process
from neutrino.cli.layout import SERVER, CLIError, Layout, layout_of, load_config
from neutrino.pki import bundle, certs, files
from neutrino.pki.ca import ROLES, CertificateAuthority, dns_name, install_pair
from neutrino.pki.paths import PkiPaths, pki_paths

DEFAULT_WARN_DAYS = 30


def _paths(args: argparse.Namespace) -> tuple[Layout, PkiPaths]:
    layout = layout_of(args)
    return layout, pki_paths(layout.root)


def _ca(paths: PkiPaths) -> CertificateAuthority:
    """This node's CA; CLIError saying what to do on a node without one."""
    if not paths.ca_dir.exists():
        hint = (
            "this node joined with a bundle: run the command on the node with the CA and import the new bundle here"
            if paths.ca.exists()
            else "create it with `neutrino pki init` (or `neutrino up`)"
        )
        raise CLIError(f"there is no CA in {paths.ca_dir}: {hint}")
    try:
        return CertificateAuthority.load(paths.ca_dir, crl_path=paths.crl)
    except certs.PkiError as exc:
        raise CLIError(str(exc)) from None


def _signal_server(layout: Layout) -> str:
    """SIGHUP to the running API server (so it loads new certificates and the CRL); what happened."""
    try:
        rec = layout.pidfile(SERVER).read()
    except process.PidFileError as exc:
        return f"the server was not told ({exc}); it loads the new files within [pki] reload_interval"
    if rec is None or not rec.is_alive():
        return "the API server is not running: it loads the new files when it starts"
    try:
        os.kill(rec.pid, signal.SIGHUP)
    except OSError as exc:
        return f"could not signal the API server (pid {rec.pid}: {exc.strerror}); it loads the files by itself"
    return f"sent SIGHUP to the API server (pid {rec.pid}): new connections use the new files"


def _print_chain(title: Path | str, chain: list[Any]) -> None:
    print(f"{title}:")
    for line in certs.chain_text(chain):
        print(line)


def _warn_days(layout: Layout, given: int | None) -> int:
    if given is not None:
        return given
    if not layout.conf.exists():
        return DEFAULT_WARN_DAYS
    try:
        return load_config(layout.conf, layout.root).pki.expiry_warning_days
    except CLIError:
        return DEFAULT_WARN_DAYS


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    _, paths = _paths(args)
    existed = paths.ca_dir.exists()
    try:
        ca = CertificateAuthority.init(
            paths.ca_dir, days_root=args.days_root, days_intermediate=args.days_intermediate, crl_path=paths.crl
        )
    except (certs.PkiError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    root_pem = ca.root_pem_path.read_bytes()
    if not paths.ca.exists() or paths.ca.read_bytes() != root_pem:
        files.write_atomic(paths.ca, root_pem)
    if not paths.crl.exists():
        ca.write_crl(paths.crl)
    if existed:
        print(f"the CA exists already in {paths.ca_dir} (kept: init never replaces a CA)")
    else:
        print(f"created the CA in {paths.ca_dir}")
    _print_chain("the CA (intermediate, root)", [ca.intermediate, ca.root])
    print(f"clients trust {paths.ca}; the CRL is {paths.crl}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    layout, paths = _paths(args)
    if args.server:
        if not args.san or args.host or args.role:
            raise CLIError("pki issue --server takes --san NAME (one or more) and neither --host nor --role")
    elif not (args.host and args.role):
        raise CLIError("pki issue needs --host HOST and --role ROLE (or --server with --san NAME ...)")
    ca = _ca(paths)
    try:
        if args.server:
            leaf = ca.new_server(args.san, days=args.days)
        else:
            leaf = ca.new_client(args.host, args.role, days=args.days)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    kind = "server" if args.server else "node"
    if args.bundle or not args.server:
        target = Path(args.bundle) if args.bundle else paths.bundles / f"{dns_name(args.host)}.tar"
        members = {f"{kind}.pem": leaf.chain_pem, f"{kind}.key": leaf.key_pem, "ca.pem": ca.root_pem_path.read_bytes()}
        if paths.crl.exists():
            members["crl.pem"] = paths.crl.read_bytes()
        bundle.make_bundle(target, members)
        _print_chain(target, [leaf.cert])
        print(f"wrote the bundle {target} (mode 0600: it holds the private key)")
        print(f"on the node: neutrino pki import {target.name} --state-dir STATE  (then delete the bundle)")
        return 0
    install_pair(leaf, paths.server_cert, paths.server_key)
    _print_chain(paths.server_cert, [leaf.cert])
    print(_signal_server(layout))
    return 0


def _files(paths: PkiPaths, given: list[str]) -> list[Path]:
    if given:
        return [Path(f) for f in given]
    found = [p for p in paths.certificates() if p.exists()]
    if not found:
        raise CLIError(f"no certificate in {paths.root}: create them with `neutrino pki init` or `neutrino up`")
    return found


def cmd_show(args: argparse.Namespace) -> int:
    layout, paths = _paths(args)
    chosen = _files(paths, args.files)
    revoked: dict[int, str] = {}
    if paths.ca_dir.exists():
        try:
            recs = CertificateAuthority.load(paths.ca_dir).issued()
            revoked = {r.serial: certs.fmt_time(r.revoked) for r in recs if r.revoked}
        except certs.PkiError as exc:
            print(f"warning: {exc}")
    failed = False
    for path in chosen:
        try:
            chain = certs.load_chain(path)
        except certs.PkiError as exc:
            print(f"error: {exc}")
            failed = True
            continue
        _print_chain(path, chain)
        for cert in chain:
            if cert.serial_number in revoked:
                print(f"  REVOKED: serial {cert.serial_number} on {revoked[cert.serial_number]}")
        print()
    warn_days = _warn_days(layout, args.warn_days)
    problems = certs.expiry_problems(chosen, warn_days)
    for msg in problems:
        print(f"warning: {msg}")
    if not problems:
        print(f"no certificate expires within {warn_days} days")
    return 1 if failed or any(" expired on " in m for m in problems) else 0


def _subject_of(cert_path: Path) -> certs.CertInfo:
    try:
        return certs.describe(certs.load_chain(cert_path)[0])
    except certs.PkiError as exc:
        raise CLIError(f"{exc} (nothing to rotate: `neutrino up` creates it)") from None


def cmd_rotate(args: argparse.Namespace) -> int:
    layout, paths = _paths(args)
    ca = _ca(paths)
    old_server = _subject_of(paths.server_cert)
    node = certs.load_chain(paths.node_cert)[0] if paths.node_cert.exists() else None
    try:
        sans = [s.split(":", 1)[1] for s in old_server.sans]
        new = ca.issue_server(sans, paths.server_cert, paths.server_key, days=args.days)
        print(f"{paths.server_cert}: serial {old_server.serial} -> {new.serial_number} (SANs {', '.join(sans)})")
        if node is not None:
            host = certs.common_name(node.subject)
            role = certs.name_attribute(node.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
            new = ca.issue_client(host, role, paths.node_cert, paths.node_key, days=args.days)
            print(f"{paths.node_cert}: serial {node.serial_number} -> {new.serial_number} ({host}, role {role})")
    except ValueError as exc:
        raise CLIError(f"cannot re-issue with the same names: {exc}") from None
    print(_signal_server(layout))
    print("the old certificates stay valid until they expire; revoke them with `neutrino pki revoke SERIAL`")
    return 0


def parse_serial(text: str) -> int:
    """A serial as decimal, ``0x``-hex or openssl's colon-separated hex."""
    t = text.strip().lower()
    try:
        if ":" in t:
            return int(t.replace(":", ""), 16)
        return int(t, 16) if t.startswith("0x") else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a serial (decimal, 0x-hex or aa:bb:... hex)") from None


def cmd_revoke(args: argparse.Namespace) -> int:
    layout, paths = _paths(args)
    if (args.serial is None) == (args.host is None):
        raise CLIError("pki revoke takes a SERIAL or --host HOST (one of them)")
    ca = _ca(paths)
    try:
        if args.serial is not None:
            serials = [args.serial]
        else:
            host = dns_name(args.host, "host name")
            serials = [r.serial for r in ca.issued() if r.kind == "client" and r.host == host and not r.revoked]
            if not serials:
                raise CLIError(f"no valid client certificate of host {host} to revoke")
        for serial in serials:
            rec = ca.revoke(serial)
            print(f"revoked serial {serial} ({rec.subject}) on {certs.fmt_time(rec.revoked or certs.utcnow())}")
    except (certs.PkiError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(f"rewrote the CRL {paths.crl}")
    print(_signal_server(layout))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    layout, _ = _paths(args)
    try:
        written = bundle.install_bundle(layout.root, Path(args.bundle))
    except certs.PkiError as exc:
        raise CLIError(str(exc)) from None
    for path in written:
        print(f"installed {path} (mode 0600)")
    return 0


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1 or more)")
    return n


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "pki",
        help="the certificate authority: init, issue, show, rotate, revoke, import",
        description="The project's own certificate authority (STATE/pki; docs/tls.md).",
    )
    cmds = p.add_subparsers(dest="pki_command", metavar="ACTION", required=True)

    q = cmds.add_parser("init", parents=[common], help="create the CA (never replaces one)")
    q.add_argument("--days-root", type=_positive, default=3650, metavar="N", help="root validity (%(default)s)")
    q.add_argument(
        "--days-intermediate", type=_positive, default=1825, metavar="N", help="intermediate validity (%(default)s)"
    )
    q.set_defaults(func=cmd_init)

    q = cmds.add_parser(
        "issue",
        parents=[common],
        help="issue a client certificate (bundle) or a server certificate",
        description="--host H --role R: a client certificate for node H (CN=H, OU=R), written "
        "as a bundle (tar, mode 0600: node.pem, node.key, ca.pem; default STATE/pki/bundles/H.tar) "
        "to import on H.  --server --san NAME...: a server certificate; without --bundle it "
        "replaces this node's server.pem/server.key and the server reloads it.",
    )
    q.add_argument("--host", help="the node's host name (client certificate)")
    q.add_argument("--role", choices=ROLES, help="the node's role (client certificate)")
    q.add_argument("--server", action="store_true", help="a server certificate instead")
    q.add_argument("--san", action="append", metavar="NAME", help="a DNS name or IP address of the server (repeatable)")
    q.add_argument("--bundle", metavar="FILE", help="write a bundle to FILE")
    q.add_argument("--days", type=_positive, default=365, metavar="N", help="validity in days (%(default)s)")
    q.set_defaults(func=cmd_issue)

    q = cmds.add_parser(
        "show",
        parents=[common],
        help="print certificates: subject, issuer, SANs, key usage, validity",
        description="Print each certificate of each FILE (default: every certificate in "
        "STATE/pki) and warn about those expiring within --warn-days.  Exit status 1 if one "
        "has expired or a file cannot be read.",
    )
    q.add_argument("files", nargs="*", metavar="FILE")
    q.add_argument(
        "--warn-days", type=int, metavar="N", help="warn within N days (default: [pki] expiry_warning_days, 30)"
    )
    q.set_defaults(func=cmd_show)

    q = cmds.add_parser(
        "rotate",
        parents=[common],
        help="new keys and certificates for server.pem and node.pem",
        description="Re-issue server.pem and node.pem with the same subjects and SANs and new "
        "keys (each file replaced atomically), then tell the running server to reload.",
    )
    q.add_argument("--days", type=_positive, default=365, metavar="N", help="validity in days (%(default)s)")
    q.set_defaults(func=cmd_rotate)

    q = cmds.add_parser("revoke", parents=[common], help="revoke a certificate (CRL) and tell the server")
    q.add_argument("serial", nargs="?", type=parse_serial, help="serial (decimal, 0x-hex or aa:bb:.. hex)")
    q.add_argument("--host", help="revoke every valid client certificate of this host")
    q.set_defaults(func=cmd_revoke)

    q = cmds.add_parser(
        "import",
        parents=[common],
        help="install a bundle from `pki issue` on this node",
        description="Check the bundle (chain to its ca.pem, validity, key match) and install its "
        "files into STATE/pki with mode 0600.",
    )
    q.add_argument("bundle", metavar="BUNDLE")
    q.set_defaults(func=cmd_import)

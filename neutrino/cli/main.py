"""The ``neutrino`` command.

    neutrino up            start the service in the background (first run: writes the config)
    neutrino server        run the API server in the foreground
    neutrino status        what runs, and whether the APIs answer
    neutrino down          stop what ``up`` started (--purge: also delete the state)
    neutrino check-config  validate the configuration file
    neutrino demo          build the seed's Lab 10 and check it (--clean removes it)

Every subcommand takes ``--state-dir DIR`` (default: $NEUTRINO_STATE_DIR or
/var/lib/neutrino).  The state directory holds ``neutrino.conf``, the SQLite
database (unless [database] connection says otherwise), ``log/`` and ``run/``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import importlib.util
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from neutrino import config as nconfig
from neutrino.cli import demo, filemodes, host, process
from neutrino.cli import pki as pki_cli
from neutrino.cli.layout import (
    DEFAULT_STATE_DIR,
    SERVER,
    CLIError,
    Layout,
    endpoints,
    layout_of,
    load_config,
    self_command,
)
from neutrino.config_checks import ROLE_CHOICES
from neutrino.pki.tls import TLSFileError, client_context

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 2.0  # seconds `status` waits for an API to answer

# Exit codes of `status` (LSB style).
EXIT_RUNNING = 0
EXIT_DEGRADED = 1
EXIT_NOT_RUNNING = 3


# --------------------------------------------------------------------------
# The state directory (Layout, CLIError: neutrino.cli.layout)
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(layout: Layout, timeout: float = 60.0) -> Iterator[None]:
    """Serialize up/down on one state directory."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise CLIError(f"{layout.root} is locked by another neutrino up/down") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def initial_values() -> dict[tuple[str, str], str]:
    """What ``up`` writes into a new neutrino.conf."""
    values = dict(nconfig.ALL_IN_ONE)
    db = next(o for o in nconfig.OPTIONS if (o.section, o.name) == ("database", "connection"))
    values[("database", "connection")] = db.default
    # The metadata agent and the metadata API sign/check X-Instance-ID with this.
    values[("metadata", "metadata_proxy_shared_secret")] = secrets.token_hex(16)
    return values


# --------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _opener(url: str, cafile: Path | str | None) -> urllib.request.OpenerDirector:
    """The plain opener, or for ``https://`` one that verifies the server against ``cafile``."""
    if not url.startswith("https://"):
        return _OPENER
    ctx = client_context(cafile) if cafile else ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))


def probe(url: str, timeout: float = 2.0, cafile: Path | str | None = None) -> tuple[bool, str]:
    """(answers, detail): any HTTP response counts as an answer; ``https://`` is verified
    against ``cafile`` (a certificate that does not verify is no answer, and says why)."""
    try:
        opener = _opener(url, cafile)
    except TLSFileError as exc:
        return False, f"cannot verify its certificate: {exc}"
    try:
        with opener.open(url, timeout=timeout) as resp:
            return True, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return True, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason)


def _port_taken(url: str) -> bool:
    hostport = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Hooks into the server (``ServerHooks``: the tests pass a fake server's)
# --------------------------------------------------------------------------


def _server_module():
    if importlib.util.find_spec("neutrino.server") is None:
        raise CLIError("neutrino.server is not part of this build yet: there is no API server to run")
    import neutrino.server

    return neutrino.server


def prepare(cfg: nconfig.Config) -> None:
    """The TLS files checked (``neutrino.server.server_tls``: a missing, unreadable or bad
    certificate or key stops ``up`` with its path and what to do), then migrations and the
    identity bootstrap (``neutrino.server.prepare``)."""
    server = _server_module()
    try:
        server.server_tls(cfg)
    except server.TLSSetupError as exc:
        raise CLIError(str(exc)) from None
    server.prepare(cfg)


def server_argv(layout: Layout, port_offset: int) -> list[str]:
    argv = [sys.executable, "-m", "neutrino.cli.main", "server", "--state-dir", str(layout.root)]
    if port_offset:
        argv += ["--port-offset", str(port_offset)]
    return argv


@dataclass(frozen=True)
class ServerHooks:
    """What ``up`` and ``status`` use of the API server, given to ``main``: the real
    server's by default; the CLI's tests pass a fake server's (and a shorter probe)."""

    prepare: Callable[[nconfig.Config], None] = prepare
    argv: Callable[[Layout, int], list[str]] = server_argv
    initial_values: Callable[[], dict[tuple[str, str], str]] = initial_values
    probe_timeout: float = PROBE_TIMEOUT


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def _read_record(pf: process.PidFile) -> process.PidRecord | None:
    try:
        return pf.read()
    except process.PidFileError as exc:
        print(f"warning: {exc}; ignoring it", file=sys.stderr)
        pf.remove()
        return None


def _fmt_uptime(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _roles_arg(text: str) -> tuple[str, ...]:
    roles = nconfig._list(text)
    bad = [r for r in roles if r not in ROLE_CHOICES]
    if bad or not roles:
        raise CLIError(f"--role {text}: choose from {', '.join(ROLE_CHOICES)} (comma-separated)")
    return roles


def _port_offset(layout: Layout, given: int | None) -> int:
    """``given``, else the offset the state dir was last brought up with (0 if never); remembered."""
    path = layout.port_offset_file
    if given is None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return 0
    try:
        remembered = int(path.read_text().strip())
    except (OSError, ValueError):
        remembered = None
    if remembered != given:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(f"{given}\n")
        os.replace(tmp, path)
    return given


def _write_initial_config(
    layout: Layout,
    roles: tuple[str, ...] | None,
    initial: Callable[[], dict[tuple[str, str], str]] = initial_values,
    no_tls: bool = False,
) -> None:
    values = initial()
    if roles:
        values[("DEFAULT", "roles")] = ",".join(roles)
    if no_tls:  # the only way to plain HTTP (``neutrino up --no-tls``)
        values[("DEFAULT", "use_ssl")] = "false"
    text = nconfig.render_ini(values)
    tmp = layout.conf.with_suffix(".conf.tmp")
    # It holds the metadata secret (and maybe a database password): owner only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, layout.conf)
    print(f"wrote {layout.conf}")


def _repair_modes(cfg: nconfig.Config) -> None:
    """Make the state directory (and the key repository, the SQLite files) private again,
    saying what had to change (see ``neutrino.cli.filemodes``)."""
    fixed = filemodes.repair(filemodes.private_paths(cfg))
    if fixed:
        print(f"repaired the modes of {len(fixed)} file(s) readable by other users:")
        for fix in fixed[:20]:
            print(f"  {fix}")
        if len(fixed) > 20:
            print(f"  ... and {len(fixed) - 20} more")


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    layout = layout_of(args)
    layout.root.mkdir(parents=True, exist_ok=True, mode=filemodes.DIR_MODE)  # an old one: _repair_modes
    layout.log_dir.mkdir(exist_ok=True, mode=filemodes.DIR_MODE)
    given = _roles_arg(args.role) if args.role else None
    with _locked(layout):
        args.port_offset = _port_offset(layout, args.port_offset)
        if not layout.conf.exists():
            if given is not None and "controller" not in host.expand_roles(given):
                raise CLIError(
                    f"{layout.conf} does not exist: a node without the controller role needs the "
                    "controller's configuration with this node's settings ([DEFAULT] host, "
                    "server_url, [ovs] local_ip...) and the controller's agent-openrc "
                    "(see docs/multinode.md)"
                )
            _write_initial_config(layout, given, args.hooks.initial_values, no_tls=args.no_tls)
        overrides = {("DEFAULT", "roles"): ",".join(given)} if given else {}
        cfg = load_config(layout.conf, layout.root, args.port_offset, overrides)
        _repair_modes(cfg)
        roles = host.expand_roles(cfg.default.roles)
        kinds = () if args.no_agents else host.agents_for(roles)
        server: _ServerUp | None = None
        if "controller" in roles:
            _ensure_tls(layout, cfg, roles, no_tls=args.no_tls)
            server = _up_controller(layout, cfg, args)
            if server.already:
                cfg = load_config(layout.conf, layout.root, server.port_offset, overrides)
            network_url = server.endpoints["network"]
        else:
            network_url = _server_url(cfg)
            from neutrino.agents.auth import AGENT_OPENRC

            if kinds and not cfg.default.use_ssl and not (layout.root / AGENT_OPENRC).exists():
                # Over TLS the agents present the node's certificate (its bundle) instead.
                raise CLIError(
                    f"{layout.root / AGENT_OPENRC} is missing: copy it from the controller "
                    "(the agents' service user with --no-tls; a node other than the controller "
                    "needs no admin-openrc)"
                )
            _ensure_tls(layout, cfg, roles, no_tls=args.no_tls)
            answers, why = probe(network_url, timeout=5.0, cafile=_ca_file(cfg))
            if not answers:
                raise CLIError(f"the Neutron API at {network_url} ([DEFAULT] server_url) does not answer: {why}")
        offset = server.port_offset if server else args.port_offset
        if kinds and server is not None and not (layout.root / "agent-openrc").exists():
            # The running server's bootstrap predates the agents' service user.
            raise CLIError(
                f"{layout.root / 'agent-openrc'} is missing: the server that runs was started "
                "by an older neutrino; restart it (neutrino down, then neutrino up)"
            )
        if kinds:
            try:
                started = host.start(layout, cfg, offset, kinds, lab_host="network" in roles)
            except RuntimeError as exc:
                raise CLIError(str(exc)) from None
            if started:
                verb = "restarted" if server is not None and server.already else "started"
                print(f"{verb} {', '.join(started)} (Open vSwitch in {host.private_ovs(cfg).rundir})")
            if host.can_run()[0] and (started or server is None or not server.already):
                missing = host.wait_alive(layout, network_url, kinds=kinds, host=_host_name(cfg))
                if missing:
                    print(f"warning: not alive yet: {', '.join(missing)} (see {layout.log_dir})")
        if server is not None and server.already:
            return 0

    elapsed = time.monotonic() - t0
    where = f" (roles: {', '.join(roles)})" if set(roles) != set(host.ROLES) else ""
    if server is None:
        print(
            f"neutrino {', '.join(roles)} node is up in {elapsed:.1f} s{where}: agents "
            f"{', '.join(kinds) or '(none)'} following {network_url}"
        )
        print(f"Stop with: {self_command()} down --state-dir {layout.root}")
        return 0
    eps = server.endpoints
    print(f"neutrino is up in {elapsed:.1f} s (server pid {server.record.pid}){where}")
    print(f"  Identity API  {eps['identity']}")
    print(f"  Network API   {eps['network']}")
    print(f"  config        {layout.conf}")
    print(f"  TLS           {_tls_text(cfg)}")
    print(f"  log           {layout.log(SERVER)}")
    creds = [p for p in layout.credential_files() if p.exists()]
    if creds:
        print(f"  credentials   {', '.join(str(p) for p in creds)}")
        openrc = next((p for p in creds if p.name == "admin-openrc"), None)
        if openrc is not None:
            openstack = shutil.which("openstack") or str(Path(sys.executable).parent / "openstack")
            print("Try:")
            print(f"  . {openrc}")
            print(f"  {openstack} network list")
    print(f"Stop with: {self_command()} down --state-dir {layout.root}")
    return 0


@dataclass
class _ServerUp:
    record: process.PidRecord
    endpoints: dict[str, str]
    port_offset: int
    already: bool  # it was running before this `up`


def _host_name(cfg: nconfig.Config) -> str:
    return cfg.default.host or socket.gethostname()


def _ca_file(cfg: nconfig.Config) -> Path | None:
    """The CA this node's clients verify the APIs with; None with TLS off."""
    if not cfg.default.use_ssl:
        return None
    from neutrino.pki.paths import pki_paths

    return Path(cfg.default.ssl_ca_file or pki_paths(cfg.state_dir).ca)


def _tls_text(cfg: nconfig.Config) -> str:
    return f"on (CA {_ca_file(cfg)})" if cfg.default.use_ssl else "off (plain HTTP)"


def _cert_role(roles: Sequence[str]) -> str:
    """The role a node's client certificate names: its one role, else ``all``."""
    return roles[0] if len(roles) == 1 else "all"


def _ensure_tls(layout: Layout, cfg: nconfig.Config, roles: Sequence[str], *, no_tls: bool) -> None:
    """With TLS on: the CA (on a controller, at the first ``up``), the server's and this
    node's certificates; a joined node must have imported its bundle.  ``--no-tls`` on a
    configuration that has TLS on is refused (the file says what this node serves)."""
    if not cfg.default.use_ssl:
        return
    if no_tls:
        raise CLIError(
            f"{layout.conf} has TLS on ([DEFAULT] use_ssl = true); to serve plain HTTP set "
            "use_ssl = false there (and restart: neutrino down, neutrino up)"
        )
    from neutrino.pki.ca import ensure_node_pki, server_sans
    from neutrino.pki.certs import PkiError
    from neutrino.pki.paths import pki_paths

    name = _host_name(cfg)
    paths = pki_paths(layout.root)
    if "controller" in roles:  # a joined node never makes a CA of its own: it imports a bundle
        hosts = [cfg.identity.public_host, cfg.identity.bind_host, cfg.default.bind_host, cfg.compute.bind_host]
        hosts += [cfg.image.bind_host, cfg.metadata.bind_host]
        try:
            paths = ensure_node_pki(
                layout.root,
                host=name,
                role=_cert_role(cfg.default.roles),
                sans=server_sans(name, hosts),  # + localhost, 127.0.0.1, ::1; no wildcard or empty
            )
        except (ValueError, PkiError, OSError) as exc:
            raise CLIError(f"cannot create the TLS files in {paths.root}: {exc}") from None
    # A joined node's agents need their pair and the CA (its bundle); a server also its own pair and the CRL.
    own = [paths.node_cert, paths.node_key, paths.ca]
    wanted = paths.missing() if "controller" in roles else [p for p in own if not p.exists()]
    if wanted:
        raise CLIError(
            f"TLS is on but {', '.join(str(p) for p in wanted)} missing: on the controller run "
            f"`neutrino pki issue --host {name} --role {_cert_role(cfg.default.roles)} --bundle FILE`, "
            f"then here `neutrino pki import FILE --state-dir {layout.root}` (or serve plain HTTP: use_ssl = false)"
        )


def _server_url(cfg: nconfig.Config) -> str:
    """Where this node's agents reach the Neutron API (``[DEFAULT] server_url``, else this node's)."""
    return cfg.default.server_url or endpoints(cfg)["network"]


def _up_controller(layout: Layout, cfg: nconfig.Config, args: argparse.Namespace) -> _ServerUp:
    """Start the API server (its workers) unless it runs; returns once the APIs answer."""
    pf = layout.pidfile(SERVER)
    rec = _read_record(pf)
    if rec is not None and rec.is_alive():
        eps = rec.extra.get("endpoints", {})
        print(f"neutrino is already running (server pid {rec.pid}, state in {layout.root})")
        for name, url in eps.items():
            print(f"  {name:9} {url}")
        return _ServerUp(rec, eps, rec.extra.get("port_offset", 0), already=True)
    if rec is not None:
        leftovers = rec.processes()
        if leftovers:
            print(f"cleaning up processes of a crashed server: {process.describe_pids(leftovers)}")
            process.stop(rec, timeout=5.0)
        pf.remove()
    eps = endpoints(cfg)
    for name, url in eps.items():
        if _port_taken(url):
            raise CLIError(
                f"the {name} API address {url} is already in use by another program; "
                f"stop it, or move the ports (--port-offset N, or bind_port in {layout.conf})"
            )

    args.hooks.prepare(cfg)

    log_path = layout.log(SERVER)
    log_path.touch()
    log_start = log_path.stat().st_size
    with open(log_path, "a") as fh:
        fh.write(f"--- neutrino up {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    proc, rec = process.spawn(
        SERVER,
        args.hooks.argv(layout, args.port_offset),
        pidfile=pf,
        log_path=log_path,
        cwd=layout.root,
        extra={"endpoints": eps, "port_offset": args.port_offset},
    )
    answered: set[str] = set()

    cafile = _ca_file(cfg)

    def ready() -> bool:
        for name, url in eps.items():
            if name not in answered and probe(url, timeout=1.0, cafile=cafile)[0]:
                answered.add(name)
        return len(answered) == len(eps) or proc.poll() is not None

    process.wait_for(ready, args.timeout, interval=0.1)
    if len(answered) != len(eps):
        code = proc.poll()
        why = (
            f"the server exited with status {code}"
            if code is not None
            else f"the server did not answer within {args.timeout:g} s "
            f"(waiting for {', '.join(sorted(set(eps) - answered))})"
        )
        process.stop(rec, timeout=5.0)
        pf.remove()
        log_tail = process.tail(log_path, 40, start=log_start)
        raise CLIError(f"{why}\n--- last lines of {log_path} ---\n{log_tail}\n---")
    return _ServerUp(rec, eps, args.port_offset, already=False)


def cmd_server(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    cfg = load_config(layout.conf, layout.root, args.port_offset)
    server = _server_module()
    logging.basicConfig(
        level=logging.DEBUG if cfg.default.debug else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    try:
        server.run(cfg)
    except KeyboardInterrupt:
        pass
    except server.TLSSetupError as exc:
        raise CLIError(str(exc)) from None
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    records: list[tuple[process.PidFile, process.PidRecord | None, str]] = []
    for pf in process.pidfiles(layout.run_dir):
        try:
            rec = pf.read()
            records.append((pf, rec, ""))
        except process.PidFileError as exc:
            records.append((pf, None, str(exc)))

    server_alive = False
    any_alive = False
    degraded = False
    if not records:
        print(f"neutrino is not running (nothing started from {layout.root})")
    for pf, rec, err in records:
        if rec is None:
            print(f"{pf.name:10} unreadable pidfile: {err or 'gone'}")
            degraded = True
            continue
        alive = rec.is_alive()
        others = [p for p in process.find_by_token(rec.token) if p != rec.pid]
        if alive:
            any_alive = True
            server_alive = server_alive or rec.name == SERVER
            extra = f", {len(others)} worker(s)" if others else ""
            print(f"{rec.name:10} pid {rec.pid:<7} running, up {_fmt_uptime(time.time() - rec.started_at)}{extra}")
        else:
            degraded = True
            msg = f"{rec.name:10} pid {rec.pid:<7} not running (stale pidfile)"
            if others:
                any_alive = True
                msg += f"; left-over processes {process.describe_pids(others)}"
            print(msg)

    eps: dict[str, str] = {}
    srv = next((r for _, r, _ in records if r is not None and r.name == SERVER), None)
    if srv is not None:
        eps = dict(srv.extra.get("endpoints", {}))
    controller = True
    cfg = None
    if layout.conf.exists():
        try:
            cfg = load_config(layout.conf, layout.root)
            controller = bool({"all", "controller"} & set(cfg.default.roles))
            if not eps:  # a node without the controller role shows the server its agents follow
                eps = endpoints(cfg) if controller else {"network": _server_url(cfg)}
        except CLIError:
            pass
    answering = True
    cafile = None
    if cfg is not None:
        cafile = _ca_file(cfg)
        print(f"TLS: {_tls_text(cfg)}")
        for problem in _expiry_problems(cfg):
            print(f"warning: {problem}")
    for name, url in eps.items():
        ok, detail = probe(url, timeout=args.hooks.probe_timeout, cafile=cafile)
        answering = answering and ok
        print(f"{name + ' API':14} {url:34} {'answers (' + detail + ')' if ok else 'no answer: ' + detail}")
        if ok and not any_alive:
            print(f"{'':14} (something answers there, but not a server started by neutrino up)")
    if cfg is not None and any_alive:
        _print_where_to_look(cfg)

    if not any_alive:
        return EXIT_NOT_RUNNING
    if degraded or (controller and not server_alive) or not answering:
        return EXIT_DEGRADED
    return EXIT_RUNNING


def _expiry_problems(cfg: nconfig.Config) -> list[str]:
    """Certificates of this node that expired or expire within ``[pki] expiry_warning_days``."""
    if not cfg.default.use_ssl:
        return []
    from neutrino.pki.certs import expiry_problems
    from neutrino.pki.paths import pki_paths

    files = [Path(f) for f in (cfg.default.ssl_cert_file, cfg.pki.client_cert_file) if f]
    return expiry_problems([*files, *pki_paths(cfg.state_dir).certificates()], cfg.pki.expiry_warning_days)


def _print_where_to_look(cfg: nconfig.Config) -> None:
    """How to reach this node's Open vSwitch and lab host (see docs/walkthrough.md)."""
    roles = host.expand_roles(cfg.default.roles)
    if not host.agents_for(roles):
        return
    from neutrino.agents.ovs.host_config import host_netns, ovs_rundir

    ns = host_netns(cfg)
    prefix = f"ip netns exec {ns} " if ns else ""
    print(f"{'Open vSwitch':14} {prefix}env OVS_RUNDIR={ovs_rundir(cfg)} ovs-vsctl show")
    if "network" in roles and host.lab_bridge(cfg):
        print(f"{'lab host':14} {cfg.lab.cidr} on physnet {host.LAB_PHYSNET}: ip netns exec {cfg.lab.host_netns} ...")


def _check_purgeable(layout: Layout) -> None:
    root = layout.root
    if root == Path(root.anchor) or root == Path.home() or len(root.parts) < 3:
        raise CLIError(f"refusing to purge {root}")
    entries = {p.name for p in root.iterdir()}
    if entries and not entries & {"neutrino.conf", "log", "run"}:
        raise CLIError(f"refusing to purge {root}: it does not look like a neutrino state directory")


def cmd_down(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    if not layout.root.exists():
        print(f"neutrino is not running (no {layout.root})")
        return 0
    if args.purge:
        _check_purgeable(layout)  # before anything is touched
    stopped_any = False
    if layout.run_dir.is_dir():
        with _locked(layout):
            stopped_any = _stop_all(layout, args.timeout)
            if layout.conf.exists():
                host.stop(layout, load_config(layout.conf, layout.root), args.purge)
            if args.purge:
                shutil.rmtree(layout.root)
    else:
        print("neutrino is not running")
        if args.purge:
            shutil.rmtree(layout.root)
    if args.purge:
        print(f"removed {layout.root}")
    elif stopped_any:
        print(f"state kept in {layout.root} (neutrino down --purge removes it)")
    return 0


def _stop_all(layout: Layout, timeout: float) -> bool:
    """Stop every process recorded in the run directory; True if any ran."""
    failed = False
    stopped_any = False
    # Agents and helpers first, the API server last.
    pfs = sorted(process.pidfiles(layout.run_dir), key=lambda p: (p.name == SERVER, p.name))
    for pf in pfs:
        rec = _read_record(pf)
        if rec is None:
            continue
        res = process.stop(rec, timeout=timeout)
        if not res.was_running:
            print(f"{rec.name}: was not running (removed stale pidfile)")
        elif res.remaining:
            print(f"{rec.name}: could not stop {process.describe_pids(res.remaining)}", file=sys.stderr)
            failed = True
            continue
        else:
            stopped_any = True
            how = f"killed after {timeout:g} s" if res.killed else "stopped"
            print(f"{rec.name}: {how} (pid {process.describe_pids(res.pids)})")
        pf.remove()
    if not pfs:
        print("neutrino is not running")
    if failed:
        raise CLIError("some processes did not stop; the state is kept")
    return stopped_any


def cmd_agent(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    cfg = load_config(layout.conf, layout.root, args.port_offset)
    from neutrino.agents import runner
    from neutrino.agents.auth import MissingCredentials

    try:
        runner.main(args.kind, cfg)
    except KeyboardInterrupt:
        pass
    except MissingCredentials as exc:
        raise CLIError(str(exc)) from None
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise CLIError("usage: neutrino console SERVER -- COMMAND [ARGS...]")
    # Imported here: it loads the HTTP client, which no other subcommand (nor an agent) needs.
    from neutrino.cli import console

    return console.run(layout, args.server, argv)


def cmd_check_config(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    path = Path(args.config) if args.config else layout.conf
    cfg = load_config(path, layout.root)
    eps = endpoints(cfg)
    print(f"{path}: OK")
    print(f"  Identity API  {eps['identity']}")
    print(f"  Network API   {eps['network']} ({cfg.default.api_workers} worker(s))")
    db = cfg.database_url
    if "@" in db:  # hide a password
        scheme, _, rest = db.partition("://")
        cred, _, host = rest.rpartition("@")
        db = f"{scheme}://{cred.split(':', 1)[0]}:***@{host}" if ":" in cred else db
    print(f"  database      {db}")
    print(
        f"  roles         {', '.join(cfg.default.roles)}"
        + (f" (agents follow {cfg.default.server_url})" if cfg.default.server_url else "")
    )
    print(f"  network types {', '.join(cfg.ml2.tenant_network_types)} (drivers: {', '.join(cfg.ml2.type_drivers)})")
    return 0


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("neutrino")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        metavar="DIR",
        default=os.environ.get("NEUTRINO_STATE_DIR") or DEFAULT_STATE_DIR,
        help="state directory (default: $NEUTRINO_STATE_DIR or %(default)s)",
    )
    offset = argparse.ArgumentParser(add_help=False)
    offset.add_argument(
        "--port-offset",
        type=int,
        default=0,
        metavar="N",
        help="add N to both API ports (to run beside another instance)",
    )

    parser = argparse.ArgumentParser(
        prog="neutrino", description="A lightweight, Neutron-compatible virtual networking service."
    )
    parser.add_argument("--version", action="version", version=f"neutrino {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "up",
        parents=[common],
        help="start the service in the background",
        description="Start the service in the background.  The first run writes "
        "DIR/neutrino.conf; every run applies migrations and the identity bootstrap, "
        "then waits until the APIs answer.",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=START_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the APIs (default: %(default)s)",
    )
    p.add_argument(
        "--port-offset",
        type=int,
        default=None,
        metavar="N",
        help="add N to both API ports (to run beside another instance; default: the offset "
        "of this state dir's last up, else 0)",
    )
    p.add_argument("--no-agents", action="store_true", help="start only the API server (no Open vSwitch, no agents)")
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="serve plain HTTP (the first up writes use_ssl = false into neutrino.conf); "
        "by default every API serves HTTPS with the node's own CA, created at the first up",
    )
    p.add_argument(
        "--role",
        metavar="ROLES",
        help="what this node runs, comma-separated: controller (API servers), network "
        "(DHCP, L3, metadata and OVS agents; the lab host), compute (OVS and compute agents) "
        "or all (default: [DEFAULT] roles, all)",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "agent",
        parents=[common, offset],
        help="run one agent in the foreground",
        description="Run an agent of this host: ovs, compute (dhcp, l3, metadata later).",
    )
    p.add_argument("kind", help="ovs | compute")
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser(
        "console",
        parents=[common],
        help="run a command inside an instance",
        description="neutrino console SERVER -- ARGV...: run ARGV in the instance's "
        "network namespace and return its exit status.",
    )
    p.add_argument("server", help="server name or id")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("server", parents=[common, offset], help="run the API server in the foreground")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser(
        "status",
        parents=[common],
        help="show what runs and whether the APIs answer",
        description="Exit status: 0 running, 1 running but unhealthy (an API does not "
        "answer or a process died), 3 not running.",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "down",
        parents=[common],
        help="stop what `up` started",
        description="SIGTERM to every process `up` started (verified to be ours), "
        "SIGKILL after --timeout.  Safe to run twice and after a crash.",
    )
    p.add_argument("--purge", action="store_true", help="also delete the state directory")
    p.add_argument(
        "--timeout",
        type=float,
        default=STOP_TIMEOUT,
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL (default: %(default)s)",
    )
    p.set_defaults(func=cmd_down)

    demo.add_parser(sub, common)
    pki_cli.add_parser(sub, common)

    p = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate the configuration",
        description="Load and validate DIR/neutrino.conf (or --config FILE).",
    )
    p.add_argument("--config", metavar="FILE", help="the file to check (default: DIR/neutrino.conf)")
    p.set_defaults(func=cmd_check_config)
    return parser


def main(argv: Sequence[str] | None = None, *, hooks: ServerHooks | None = None) -> int:
    # What neutrino (and the daemons it starts) creates is its owner's alone: the state
    # directory holds password hashes, keys and user data (neutrino.cli.filemodes).
    # (Given back on return, for callers in the same process: tests.)
    previous_umask = filemodes.private_umask()
    try:
        return _main(argv, hooks or ServerHooks())
    finally:
        os.umask(previous_umask)


def _main(argv: Sequence[str] | None, hooks: ServerHooks) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    args.hooks = hooks
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `neutrino status | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

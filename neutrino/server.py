"""The API server process: identity (Keystone v3 subset), network (Neutron
v2.0), compute (Nova v2.1 subset), image (Glance v2 subset) and metadata
(Nova's metadata handler) APIs served from one process, each on its own
listening socket.

``prepare(cfg)`` migrates the database and bootstraps identity (idempotent);
``run(cfg)`` serves until SIGTERM/SIGINT.

With ``[DEFAULT] use_ssl`` (the default) every listener serves TLS with one
``neutrino.pki.tls.ReloadingServerContext`` built from ``ssl_cert_file``,
``ssl_key_file``, ``ssl_ca_file`` and ``[pki] crl_file``: SIGHUP, and a look at
the files' mtimes every ``[pki] reload_interval`` seconds, reload them for new
handshakes (open connections and the listening sockets are untouched; a bad new
file keeps the old certificate serving).  Missing or bad files stop ``run``
(and ``neutrino up``, before it starts anything) with ``TLSSetupError`` naming
the file and what to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from neutrino import request_limits as limits
from neutrino.api.app import build_network_app
from neutrino.api.factory import make_deps, make_network_api
from neutrino.compute import faults as compute_faults
from neutrino.compute import flavors as compute_flavors
from neutrino.compute.app import build_compute_app, install_internal, make_compute_api
from neutrino.compute.image_app import build_image_app
from neutrino.config import Config
from neutrino.db.engine import Database
from neutrino.db.migrate import upgrade
from neutrino.feed.publisher import open_feed
from neutrino.feed.routes import PREFIX as FEED_PREFIX
from neutrino.identity.app import build_identity_app
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.tokens import TokenProvider
from neutrino.identity.views import default_catalog_endpoints
from neutrino.metadata.app import build_metadata_app
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import ReloadingServerContext, TLSFileError

LOG = logging.getLogger(__name__)


def key_dir(cfg: Config) -> Path:
    return Path(cfg.fernet_tokens.key_repository or cfg.state_dir / "fernet-keys")


def open_database(cfg: Config) -> Database:
    return Database(cfg.database_url)


class TLSSetupError(RuntimeError):
    """The server cannot serve HTTPS: the message names the file, why, and what to do."""


def scheme(cfg: Config) -> str:
    """``https`` when the APIs serve TLS (``[DEFAULT] use_ssl``), else ``http``."""
    return "https" if cfg.default.use_ssl else "http"


def tls_files(cfg: Config) -> tuple[Path, Path, Path, Path]:
    """(certificate chain, key, CA, CRL) the server uses: the options, else ``STATE/pki/...``."""
    d, paths = cfg.default, pki_paths(cfg.state_dir)
    return (
        Path(d.ssl_cert_file or paths.server_cert),
        Path(d.ssl_key_file or paths.server_key),
        Path(d.ssl_ca_file or paths.ca),
        Path(cfg.pki.crl_file or paths.crl),
    )


def server_tls(cfg: Config) -> ReloadingServerContext | None:
    """The listeners' TLS context (None with ``use_ssl = false``); raises ``TLSSetupError``."""
    if not cfg.default.use_ssl:
        return None
    try:
        return ReloadingServerContext(*tls_files(cfg))
    except TLSFileError as exc:
        raise TLSSetupError(
            f"cannot serve HTTPS: {exc}.  Create the CA and this node's certificates with "
            f"`neutrino pki init --state-dir {cfg.state_dir}` (`neutrino up` does it at the first start), "
            "point [DEFAULT] ssl_cert_file / ssl_key_file / ssl_ca_file at your own files, "
            "or serve plain HTTP with [DEFAULT] use_ssl = false (`neutrino up --no-tls`)"
        ) from None


def prepare(cfg: Config) -> dict[str, Any]:
    """Create the state dir (mode 0700), migrate the schema, bootstrap identity.  Idempotent.

    Runs under umask 077 (restored afterwards): the database, the keys and the
    credential files it creates are the owner's alone.  (The TLS files are
    checked by ``server_tls``: ``run`` and ``neutrino up`` call it first.)"""
    old_umask = os.umask(0o077)
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = open_database(cfg)
        try:
            upgrade(db.engine)
            TokenProvider(key_dir(cfg))  # creates the key repository on first use
            out = bootstrap(cfg, db, cfg.state_dir)
            compute_flavors.seed(db)  # the default flavors, into an empty table only
            return out
        finally:
            db.dispose()
    finally:
        os.umask(old_umask)


def _catalog_host(host: str) -> str:
    host = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def catalog_endpoints(cfg: Config) -> list[tuple[str, str, str]]:
    """Identity and network (``default_catalog_endpoints``), compute (``/v2.1``) and image."""
    pub, sch = cfg.identity.public_host, scheme(cfg)
    return [
        *default_catalog_endpoints(cfg),
        ("compute", "nova", f"{sch}://{_catalog_host(pub or cfg.compute.bind_host)}:{cfg.compute.bind_port}/v2.1"),
        ("image", "glance", f"{sch}://{_catalog_host(pub or cfg.image.bind_host)}:{cfg.image.bind_port}"),
    ]


def build_all_apps(cfg: Config, db: Database) -> tuple[dict[str, Any], TokenProvider]:
    """({"identity", "network", "compute", "image", "metadata"} -> app, token provider), sharing one database."""
    tokens = TokenProvider(key_dir(cfg), db)
    identity = build_identity_app(cfg, db, tokens, catalog_endpoints(cfg))
    auth_uri = f"{scheme(cfg)}://{cfg.identity.public_host or cfg.identity.bind_host}:{cfg.identity.bind_port}"
    deps = make_deps(cfg, db)
    # The change feed: built once here, then handed to the network API (which serves it and
    # registers the network services' snapshot sources) and to the compute side ("server").
    feed = open_feed(db, cfg.feed.retention)
    network_api = make_network_api(deps, tokens.validate, auth_uri, feed=feed)
    compute_api = make_compute_api(cfg, db, tokens.validate, deps, auth_uri)
    install_internal(network_api, compute_api.servers, feed)  # /neutrino/v1/servers for compute agents
    apps = {
        "identity": identity,
        "network": build_network_app(network_api),
        "compute": build_compute_app(cfg, db, tokens.validate, api=compute_api),
        "image": build_image_app(tokens.validate, auth_uri),
        "metadata": build_metadata_app(cfg, db, compute_api.servers),
    }
    return {name: guard(cfg, name, app) for name, app in apps.items()}, tokens


#: API name -> the format its refusals by the request limits take (``neutrino.request_limits``).
RENDERERS: dict[str, limits.Render] = {**limits.RENDERERS, "compute": compute_faults.render}


def guard(cfg: Config, name: str, app: Any) -> limits.RequestGuard:
    """``app`` (the API called ``name``) behind the request body bound and NUL refusal.

    The agents' routes (``/neutrino/v1/``, network API) get their own, larger
    bound; metadata bodies are raw text (a password), not JSON.
    """
    larger = ((FEED_PREFIX, cfg.default.max_agent_request_body_size),) if name == "network" else ()
    return limits.RequestGuard(
        app,
        RENDERERS[name],
        cfg.oslo_middleware.max_request_body_size,
        larger=larger,
        json_bodies=name != "metadata",
    )


def http_protocol(cfg: Config, name: str, tls: ReloadingServerContext | None = None) -> type:
    """The uvicorn HTTP protocol of the API called ``name``: header and body timeouts,
    header size and connection bounds, and with ``tls`` the client certificate's
    identity and revocation (``neutrino.request_limits.http_protocol``)."""
    d = cfg.default
    return limits.http_protocol(
        RENDERERS[name],
        header_timeout=d.client_header_timeout,
        body_timeout=d.client_socket_timeout,
        max_header_size=d.max_request_header_size,
        max_connections=d.max_connections,
        tls=tls,
    )


def build_apps(cfg: Config, db: Database) -> tuple[Any, Any, TokenProvider]:
    """(identity app, network app, token provider) sharing one database."""
    apps, tokens = build_all_apps(cfg, db)
    return apps["identity"], apps["network"], tokens


def bind_all(cfg: Config) -> dict[str, socket.socket]:
    return {
        "identity": _bind(cfg.identity.bind_host, cfg.identity.bind_port),
        "network": _bind(cfg.default.bind_host, cfg.default.bind_port),
        "compute": _bind(cfg.compute.bind_host, cfg.compute.bind_port),
        "image": _bind(cfg.image.bind_host, cfg.image.bind_port),
        "metadata": _bind(cfg.metadata.bind_host, cfg.metadata.bind_port),
    }


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; SO_REUSEPORT lets several server processes share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Accepted connections inherit TCP_NODELAY: without it a response written as
    # headers + body waits out the client's delayed ACK (~40 ms per request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _on_hup(tls: ReloadingServerContext, workers: tuple[int, ...]) -> None:
    """SIGHUP: reload the TLS files here and in every other worker."""
    tls.reload()
    for pid in workers:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass


async def _watch_tls(tls: ReloadingServerContext, interval: float) -> None:
    """Reload the TLS files when their mtimes change (``[pki] reload_interval``)."""
    while True:
        await asyncio.sleep(interval)
        tls.maybe_reload()


async def serve(
    cfg: Config,
    sockets: dict[str, socket.socket] | None = None,
    tls: ReloadingServerContext | None = None,
    workers: tuple[int, ...] = (),
) -> None:
    """Serve every API until cancelled or a termination signal arrives.

    ``tls`` (``server_tls(cfg)``, built here when not given): every listener
    serves TLS with ``tls.base``; SIGHUP and the mtime watch reload it, and
    SIGHUP is passed on to the ``workers`` (pids of the other worker processes).
    """
    db = open_database(cfg)
    apps, _ = build_all_apps(cfg, db)
    socks = sockets or bind_all(cfg)
    if tls is None:
        tls = server_tls(cfg)
    level = "debug" if cfg.default.debug else "warning"
    servers = []
    for name, app in apps.items():
        conf = uvicorn.Config(
            app,
            log_level=level,
            access_log=cfg.default.debug,
            lifespan="off",
            timeout_keep_alive=75,
            http=http_protocol(cfg, name, tls),
            loop="uvloop",
        )
        if tls is not None:
            # Server.serve loads only a config not loaded yet, and Server.startup passes
            # config.ssl to loop.create_server: the shared reloading context, not one of its own.
            conf.load()
            conf.ssl = tls.base
        servers.append((uvicorn.Server(conf), socks[name]))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = None
    if tls is not None:
        loop.add_signal_handler(signal.SIGHUP, _on_hup, tls, workers)
        watch = asyncio.create_task(_watch_tls(tls, max(0.1, cfg.pki.reload_interval)))
    # Each uvicorn Server installs its own SIGINT/SIGTERM handlers while it serves (uvicorn >= 0.29);
    # the loop still receives the signal through its wakeup fd, so `stop` is set and all servers exit.
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers]
    await stop.wait()
    if watch is not None:
        watch.cancel()
    for s, _ in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    db.dispose()


def _run(main: Any) -> None:
    # uvicorn.Config(loop="uvloop") only takes effect in uvicorn.run(); serve() runs the
    # servers in our own loop, so that loop is the one to make a uvloop (about a third less
    # CPU per request than the default loop: bench/metadata_bench.py).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def run(cfg: Config) -> None:
    """Blocking entry point of ``neutrino server``.

    With ``[DEFAULT] api_workers`` > 1, the sockets are bound once and
    that many worker processes serve them (one database, consistent state).
    """
    logging.basicConfig(
        level=logging.DEBUG if cfg.default.debug else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    os.umask(0o077)  # files the server creates (SQLite -wal/-shm, keys) are the owner's alone
    tls = server_tls(cfg)  # before binding: bad files stop the server with their path (TLSSetupError)
    socks = bind_all(cfg)
    # Until serve() installs its handler, a SIGHUP (reload) must not end a worker that is still starting.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    workers = max(1, cfg.default.api_workers)
    children: list[int] = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            try:
                _run(serve(cfg, socks, tls))
            finally:
                os._exit(0)
        children.append(pid)
    try:
        _run(serve(cfg, socks, tls, workers=tuple(children)))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

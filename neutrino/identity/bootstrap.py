"""First-start identity data and credential files (idempotent).

``bootstrap(cfg, db, state_dir)`` ensures, in the ``default`` domain:

* roles ``admin``, ``manager``, ``member``, ``reader``, ``service``;
* projects ``admin``, ``demo`` and ``service``;
* user ``admin`` with role ``admin`` on project ``admin``, user ``demo``
  with role ``member`` on project ``demo``, and the agents' service user
  ``neutron`` with only role ``service`` on project ``service`` (random
  passwords);

and writes, if missing, ``STATE/admin-openrc``, ``STATE/demo-openrc``,
``STATE/agent-openrc`` (the agents' credentials: what a network or compute
node gets instead of the admin's) and ``STATE/clouds.yaml`` (clouds
``admin`` and ``demo``; JSON, which is YAML), all mode 0600.  With TLS on
(``[DEFAULT] use_ssl``) the URLs are ``https://`` and the files name the CA
the clients verify the APIs with (``OS_CACERT``, clouds.yaml ``cacert``).
A file whose URL or CA no longer match the configuration is rewritten (same
password).

Passwords are never changed once set: they are read back from those files.
Only when a user exists but none of the files knows its password (files
deleted) is a new one set, and the files are rewritten.  Concurrent
bootstraps on one host serialise on ``STATE/.bootstrap.lock``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shlex
from pathlib import Path
from typing import Any

import orjson

from neutrino.config import Config
from neutrino.db.engine import Database
from neutrino.identity import store
from neutrino.identity.passwords import hash_password
from neutrino.pki.paths import pki_paths

LOG = logging.getLogger(__name__)

ROLES = ("admin", "manager", "member", "reader", "service")
#: account -> (user, project, role); each has ``STATE/<account>-openrc``.
ACCOUNTS = {
    "admin": ("admin", "admin", "admin"),
    "demo": ("demo", "demo", "member"),
    "agent": ("neutron", "service", "service"),
}
#: The accounts in clouds.yaml (people's clouds; the agents read agent-openrc).
CLOUDS = ("admin", "demo")
#: The agents' credentials file (``neutrino.agents.auth.agent_credentials`` reads it).
AGENT_OPENRC = "agent-openrc"


def auth_url(cfg: Config) -> str:
    host = cfg.identity.public_host or cfg.identity.bind_host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if cfg.default.use_ssl else 'http'}://{host}:{cfg.identity.bind_port}/v3"


def ca_file(cfg: Config, state_dir: Path | str) -> str | None:
    """The CA the clients verify the APIs with (``OS_CACERT``, ``cacert``); None without TLS."""
    if not cfg.default.use_ssl:
        return None
    return str(cfg.default.ssl_ca_file or pki_paths(state_dir).ca)


def _openrc(url: str, region: str, user: str, password: str, project: str, cacert: str | None = None) -> str:
    env = {
        "OS_AUTH_URL": url,
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": region,
        "OS_INTERFACE": "public",
    }
    if cacert is not None:
        env["OS_CACERT"] = cacert
    lines = [f"# Neutrino credentials: user {user}, project {project}."]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def _clouds(url: str, region: str, passwords: dict[str, str], cacert: str | None = None) -> str:
    clouds = {}
    for cloud in CLOUDS:
        user, project, _role = ACCOUNTS[cloud]
        clouds[cloud] = {
            "auth": {
                "auth_url": url,
                "username": user,
                "password": passwords[cloud],
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": region,
            "interface": "public",
            "identity_api_version": 3,
        }
        if cacert is not None:
            clouds[cloud]["cacert"] = cacert
    return orjson.dumps({"clouds": clouds}, option=orjson.OPT_INDENT_2).decode() + "\n"


def _read_openrc(path: Path) -> str | None:
    try:
        for line in path.read_text().splitlines():
            parts = shlex.split(line, comments=True)
            if len(parts) == 2 and parts[0] == "export" and parts[1].startswith("OS_PASSWORD="):
                return parts[1].split("=", 1)[1]
    except (OSError, ValueError):
        pass
    return None


def _read_clouds(path: Path) -> dict[str, str]:
    try:
        clouds = orjson.loads(path.read_bytes())["clouds"]
        return {
            name: c["auth"]["password"]
            for name, c in clouds.items()
            if name in CLOUDS and isinstance(c.get("auth", {}).get("password"), str)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # whatever the umask
    os.replace(tmp, path)


def _differs(path: Path, text: str) -> bool:
    """True when ``path`` is missing or does not hold ``text``."""
    try:
        return path.read_text() != text
    except (OSError, UnicodeDecodeError):
        return True


def _ensure_private(path: Path) -> None:
    """A credential file kept from an earlier run is made owner-only again."""
    try:
        if path.stat().st_mode & 0o077:
            LOG.warning("%s was readable by other users; making it mode 0600", path)
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


def _ensure_rows(db: Database, hashes: dict[str, str]) -> dict[str, Any]:
    """Create what is missing; ``hashes`` (cloud -> hash) are set on users
    created or reset.  Returns the ids."""

    def write(uow) -> dict[str, Any]:
        conn = uow.conn
        role_ids = {}
        for name in ROLES:
            row = store.find_role(conn, name) or store.create_role(conn, {"id": store.new_id(), "name": name})
            role_ids[name] = row["id"]
        out: dict[str, Any] = {"role_ids": role_ids}
        for cloud, (user, project, role) in ACCOUNTS.items():
            p = store.find_project(conn, project) or store.create_project(
                conn,
                {
                    "id": store.new_id(),
                    "name": project,
                    "domain_id": "default",
                    "description": f"Bootstrap project {project}",
                    "enabled": True,
                },
            )
            u = store.find_user(conn, user)
            if u is None:
                u = store.create_user(
                    conn,
                    {
                        "id": store.new_id(),
                        "name": user,
                        "domain_id": "default",
                        "password_hash": hashes[cloud],
                        "enabled": True,
                        "default_project_id": p["id"],
                        "description": "",
                    },
                )
            elif cloud in hashes:
                store.update_user(conn, u["id"], {"password_hash": hashes[cloud]})
            store.add_assignment(conn, u["id"], p["id"], role_ids[role])
            out[f"{cloud}_user_id"], out[f"{cloud}_project_id"] = u["id"], p["id"]
        return out

    return db.run_write(write)


def bootstrap(cfg: Config, db: Database, state_dir: Path | str) -> dict[str, Any]:
    """Ensure the bootstrap identity data and credential files (see module docstring).

    Returns ``{"auth_url", "role_ids": {name: id}, "admin_user_id",
    "admin_project_id", "admin_password", "demo_...": same, "written": [paths],
    "reset": [clouds whose password was (re)set]}``.
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    url, region, cacert = auth_url(cfg), cfg.identity.region, ca_file(cfg, state)
    files = {c: state / f"{c}-openrc" for c in ACCOUNTS}
    clouds_path = state / "clouds.yaml"
    lock_fd = os.open(state / ".bootstrap.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(lock_fd, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = _read_clouds(clouds_path)
        for cloud, path in files.items():
            pw = _read_openrc(path)
            if pw is not None:
                known[cloud] = pw
        with db.read() as conn:
            existing = {c: store.find_user(conn, user) is not None for c, (user, _p, _r) in ACCOUNTS.items()}
        passwords, hashes, reset = {}, {}, []
        for cloud in ACCOUNTS:
            if existing[cloud] and cloud in known:
                passwords[cloud] = known[cloud]
                continue
            passwords[cloud] = known.get(cloud) or secrets.token_urlsafe(18)
            hashes[cloud] = hash_password(passwords[cloud])
            if existing[cloud]:
                LOG.warning("no stored password for bootstrap user %s; setting a new one", cloud)
                reset.append(cloud)
        out = _ensure_rows(db, hashes)
        written = []
        for cloud, path in files.items():
            user, project, _role = ACCOUNTS[cloud]
            text = _openrc(url, region, user, passwords[cloud], project, cacert)
            if cloud in reset or _differs(path, text):  # missing, or TLS turned on/off since
                _write_private(path, text)
                written.append(str(path))
        clouds_text = _clouds(url, region, passwords, cacert)
        if any(c in CLOUDS for c in reset) or _differs(clouds_path, clouds_text):
            _write_private(clouds_path, clouds_text)
            written.append(str(clouds_path))
        for path in (*files.values(), clouds_path):
            _ensure_private(path)
    out.update(auth_url=url, written=written, reset=reset, **{f"{c}_password": pw for c, pw in passwords.items()})
    return out

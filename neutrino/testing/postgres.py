"""A throwaway PostgreSQL cluster for multi-node tests and benchmarks (root).

Like ``scripts/pg-test.sh`` (which the test tiers use), but reachable over a
unix socket only (``listen_addresses = ''``): a unix socket is a file, so an
API server in any network namespace of this machine reaches it, and no TCP
port is opened anywhere.  The cluster belongs to the ``postgres`` user
(``initdb`` refuses root), lives in a fresh directory, runs with fsync off,
and ``stop()`` (idempotent, registered with ``atexit``) stops it and removes
the directory.

    pg = Postgres.find()          # None when the server binaries are not installed
    url = pg.start()              # postgresql://neutrino@/neutrino?host=<socket dir>
    ...
    pg.stop()
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

DB_USER = "neutrino"
DB_NAME = "neutrino"
OS_USER = "postgres"


def server_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb (or ``$NEUTRINO_PG_BIN``)."""
    env = os.environ.get("NEUTRINO_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    dirs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    dirs = [d for d in dirs if (d / "initdb").exists()]
    return dirs[-1] if dirs else None


class Postgres:
    def __init__(self, bindir: Path, os_user: str = OS_USER) -> None:
        self.bindir = bindir
        self.os_user = os_user
        self.dir: Path | None = None
        self._started = False

    @classmethod
    def find(cls) -> Postgres | None:
        """A cluster to start, or None (no server binaries, no ``postgres`` user, not root)."""
        bindir = server_bin()
        if bindir is None or os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return None
        return cls(bindir)

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@/{DB_NAME}?host={self.dir}"

    def _as_owner(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", self.os_user, "--", *argv], capture_output=True, text=True, timeout=timeout
        )

    def start(self) -> str:
        """initdb + start + createdb; returns the SQLAlchemy URL.  Raises RuntimeError."""
        atexit.register(self.stop)
        self.dir = Path(tempfile.mkdtemp(prefix="neutrino-pg-"))
        pw = pwd.getpwnam(self.os_user)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        r = self._as_owner(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            DB_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stdout}{r.stderr}")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(
                "\n# neutrino.testing.postgres: throwaway, unix socket only\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nlog_min_messages = warning\n"
            )
        r = self._as_owner(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        if r.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace") if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stdout}{r.stderr}\n{log[-2000:]}")
        self._started = True
        r = self._as_owner(str(self.bindir / "createdb"), "-h", str(self.dir), "-U", DB_USER, DB_NAME)
        if r.returncode != 0:
            raise RuntimeError(f"createdb failed: {r.stderr}")
        return self.url

    def pid(self) -> int | None:
        """The postmaster's pid (first line of ``postmaster.pid``), None if not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def stop(self) -> None:
        """Stop the cluster (immediate) and remove its directory; safe to call twice."""
        if self.dir is None:
            return
        if self._started:
            self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self._started = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        atexit.unregister(self.stop)


__all__ = ["Postgres", "server_bin"]

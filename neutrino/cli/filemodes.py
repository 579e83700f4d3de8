"""Private files: the umask of every neutrino process and the repair of modes at ``up``.

The state directory holds secrets: the SQLite database (password hashes,
key pairs, user data, the change log), the Fernet keys, the credential files
(openrc, clouds.yaml) and ``neutrino.conf`` (the metadata secret, maybe a
database password).  Nothing in it is read by another user: the daemons
that drop privileges (dnsmasq, the haproxy metadata proxies) read their
files before dropping them or find them outside the state directory
(``/run/neutrino/...``).  So:

* every neutrino process runs with umask 077 (``private_umask``), so what
  it creates is its owner's alone; files that another user must read
  (dnsmasq's hosts files, the metadata socket) get their modes explicitly;
* ``repair(paths)`` walks the state directory (and a key repository or
  SQLite file configured outside it) and clears the group and other bits of
  every directory and regular file; sockets, symlinks and other file types
  are left alone.  ``neutrino up`` runs it each time and reports what it
  changed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

#: What every neutrino process creates files with: owner only.
UMASK = 0o077
#: Mode of the state directory and of every private directory in it.
DIR_MODE = 0o700

_original_umask: int | None = None


def private_umask() -> int:
    """Set umask 077 for this process (and what it starts); returns the umask it replaced
    (the first call's is kept as ``original_umask()``)."""
    global _original_umask
    old = os.umask(UMASK)
    if _original_umask is None:
        _original_umask = old
    return old


def original_umask() -> int:
    """The umask this process started with (for commands run on a user's behalf)."""
    if _original_umask is not None:
        return _original_umask
    current = os.umask(UMASK)
    os.umask(current)
    return current


@dataclass(frozen=True)
class Repair:
    path: Path
    old: int
    new: int

    def __str__(self) -> str:
        return f"{self.path}: mode {self.old:04o} -> {self.new:04o}"


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """``root`` and everything below it (symlinks not followed), with their lstat."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return
    yield root, st
    if not stat.S_ISDIR(st.st_mode):
        return
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        LOG.warning("cannot list %s: %s", root, exc)
        return
    for entry in entries:
        yield from _walk(Path(entry.path))


def private_mode(mode: int) -> int:
    """``mode`` without group and other bits (and without setuid/setgid/sticky)."""
    return stat.S_IMODE(mode) & 0o700


def repair(paths: Iterable[Path]) -> list[Repair]:
    """Clear group/other bits on the directories and regular files at and below ``paths``.

    Returns what was changed (and logs each at WARNING).  A path that does
    not exist is skipped; one that cannot be changed is logged and skipped."""
    done: list[Repair] = []
    seen: set[Path] = set()
    for top in paths:
        for path, st in _walk(Path(top)):
            if path in seen or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                continue
            seen.add(path)
            old = stat.S_IMODE(st.st_mode)
            new = private_mode(old)
            if old == new:
                continue
            try:
                os.chmod(path, new)
            except OSError as exc:
                LOG.warning("cannot repair the mode of %s: %s", path, exc)
                continue
            fix = Repair(path, old, new)
            LOG.warning("repaired file mode: %s", fix)
            done.append(fix)
    return done


def sqlite_files(database_url: str) -> list[Path]:
    """The SQLite database file of ``database_url`` and its -wal/-shm/-journal companions."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return []
    db = Path(database_url[len(prefix) :].split("?", 1)[0])
    if not db.name:
        return []
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def private_paths(cfg) -> list[Path]:
    """What ``repair`` checks for a configuration: the state directory, the Fernet key
    repository and the SQLite database (each only once, wherever it is)."""
    state = Path(cfg.state_dir)
    out = [state]
    keys = cfg.fernet_tokens.key_repository
    extra = [Path(keys)] if keys else []
    extra += sqlite_files(cfg.database_url)
    for p in extra:
        try:
            p.resolve().relative_to(state.resolve())
        except ValueError:
            out.append(p)
    return out

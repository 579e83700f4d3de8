"""Atomic writes with an explicit mode.

A key file must never exist with a mode that lets another user read it, not even
between ``open`` and ``chmod``; and a reader (the server reloading its certificate)
must never see a half-written file.  So: the new content goes to a temporary file in
the same directory, created with ``O_EXCL`` and the final mode, is flushed to disk,
then renamed over the target (atomic on POSIX); the directory is synced so the rename
survives a crash.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Mode of private keys, of the CA's records and of every other file in ``STATE/pki``
#: (the state directory is private: neutrino.cli.filemodes).
PRIVATE = 0o600
#: Mode of the directories this package creates.
DIR_MODE = 0o700


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and its parents) as private directories if missing."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    """Replace ``path`` by ``data`` with ``mode``, atomically (see the module docstring)."""
    path = Path(path)
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL|O_NOFOLLOW: never reuse (or follow a symlink planted at) the temporary name.  The
    # mode is given at creation, so the file is never more open than ``mode``; fchmod then sets
    # exactly ``mode`` (the umask may have removed bits from it).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def replace_together(pairs: list[tuple[Path, bytes, int]]) -> None:
    """Write several files, each atomically, after all of their contents are on disk.

    Used for a certificate and its key: both temporaries are written first, then renamed
    one after the other, so a reader sees at worst the new key with the old certificate for
    the time between two renames (a reloading server then keeps its old pair, as it must
    for any mismatched pair) and never a partial file."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in pairs:
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
            write_atomic(tmp, data, mode)
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
        for _, path in staged[:1]:
            _fsync_dir(path.parent)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)

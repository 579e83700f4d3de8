"""Process helpers: pidfiles, telling our processes from others, daemons.

Self-contained (standard library only, Linux ``/proc``); every command is an
argv list, never a shell string.

A daemon started by ``spawn()`` is recorded in a JSON pidfile with its pid,
its start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot) and
a random token that is put into its environment as ``NEUTRINO_INSTANCE_TOKEN``
and so inherited by every process it forks or spawns.  A pid is ours only
while its start time still matches: a pid reused by another process after a
crash is never signalled.  The token finds the daemon's children even after
the daemon itself died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOKEN_ENV = "NEUTRINO_INSTANCE_TOKEN"
PROC = Path("/proc")


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 first)."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return None
    except OSError:
        return None
    # The command name is in parentheses and may itself contain ') '.
    return raw[raw.rfind(b")") + 2 :].decode("ascii", "replace").split()


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, None if it is gone."""
    f = _stat_fields(pid)
    return int(f[19]) if f else None  # field 22


def proc_state(pid: int) -> str | None:
    """One-letter state (R, S, D, Z, ...), None if there is no such process."""
    f = _stat_fields(pid)
    return f[0] if f else None


def proc_pgid(pid: int) -> int | None:
    f = _stat_fields(pid)
    return int(f[2]) if f else None  # field 5


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    return proc_state(pid) not in (None, "Z", "X", "x")


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]] if raw else []


def proc_environ(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, val = item.partition(b"=")
        if sep:
            out[key.decode("utf-8", "replace")] = val.decode("utf-8", "replace")
    return out


def all_pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def find_by_token(token: str) -> list[int]:
    """Live processes whose environment carries ``TOKEN_ENV=token``."""
    if not token:
        return []
    needle = f"{TOKEN_ENV}={token}".encode()
    me = os.getpid()
    found = []
    for pid in all_pids():
        if pid == me:
            continue
        try:
            raw = (PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if needle in raw.split(b"\0") and is_running(pid):
            found.append(pid)
    return sorted(found)


# --------------------------------------------------------------------------
# Pidfiles
# --------------------------------------------------------------------------


@dataclass
class PidRecord:
    """What a pidfile says about one daemon."""

    name: str
    pid: int
    start_time: int
    token: str
    argv: list[str]
    started_at: float = 0.0  # Unix time
    extra: dict[str, Any] = field(default_factory=dict)

    def is_alive(self) -> bool:
        """True while the recorded process runs (same pid *and* start time)."""
        # A zombie counts as dead (its parent, maybe us, has not reaped it yet).
        return is_running(self.pid) and proc_start_time(self.pid) == self.start_time

    def processes(self) -> list[int]:
        """The daemon (if alive) and every live process carrying its token."""
        pids = set(find_by_token(self.token))
        if self.is_alive():
            pids.add(self.pid)
        return sorted(pids)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PidRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            token=str(data["token"]),
            argv=[str(a) for a in data.get("argv", [])],
            started_at=float(data.get("started_at", 0.0)),
            extra=dict(data.get("extra", {})),
        )


class PidFileError(Exception):
    """A pidfile that exists but cannot be understood."""


class PidFile:
    """``DIR/<name>.pid``: a JSON ``PidRecord``, written atomically."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.stem

    def read(self) -> PidRecord | None:
        """The record, None when there is no pidfile; PidFileError if garbled."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PidFileError(f"{self.path}: {exc}") from exc
        try:
            return PidRecord.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise PidFileError(f"{self.path}: not a neutrino pidfile ({exc})") from exc

    def write(self, rec: PidRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(rec.to_json())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"PidFile({str(self.path)!r})"


def pidfiles(run_dir: Path | str) -> list[PidFile]:
    """Every pidfile in ``run_dir``, sorted by name."""
    d = Path(run_dir)
    if not d.is_dir():
        return []
    return [PidFile(p) for p in sorted(d.glob("*.pid"))]


# --------------------------------------------------------------------------
# Starting and stopping
# --------------------------------------------------------------------------


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    pidfile: PidFile,
    log_path: Path | str,
    cwd: Path | str = "/",
    env: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[subprocess.Popen, PidRecord]:
    """Start ``argv`` as a daemon in a new session and record it in ``pidfile``.

    stdin is /dev/null, stdout and stderr are appended to ``log_path``.  The
    returned ``Popen`` lets the caller notice an early exit (``poll()``).
    """
    if not argv:
        raise ValueError("empty argv")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    child_env = dict(os.environ if env is None else env)
    child_env[TOKEN_ENV] = token
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab", buffering=0) as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(cwd),
            env=child_env,
            start_new_session=True,
            close_fds=True,
        )
    start = proc_start_time(proc.pid)
    if start is None:  # exited (and was reaped) already
        proc.wait()
        start = -1
    rec = PidRecord(
        name=name,
        pid=proc.pid,
        start_time=start,
        token=token,
        argv=list(argv),
        started_at=time.time(),
        extra=dict(extra or {}),
    )
    pidfile.write(rec)
    return proc, rec


@dataclass
class StopResult:
    name: str
    was_running: bool  # the recorded daemon or one of its children ran
    killed: bool = False  # SIGKILL was needed
    pids: list[int] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)  # still alive afterwards (bad)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(rec: PidRecord, *, timeout: float = 10.0, kill_wait: float = 5.0, poll: float = 0.05) -> StopResult:
    """Stop the daemon ``rec`` describes, and whatever it left behind.

    SIGTERM goes to the daemon (it is expected to stop its own workers); if
    the daemon is already gone, to the processes carrying its token.  After
    ``timeout`` seconds, SIGKILL goes to every one still alive and to the
    daemon's process group.  Processes that are not ours are never touched.
    """
    main_alive = rec.is_alive()
    pids = rec.processes()
    res = StopResult(rec.name, was_running=bool(pids), pids=list(pids))
    if not pids:
        return res
    if main_alive:
        _signal(rec.pid, signal.SIGTERM)
        orphans_signalled = False
    else:
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        orphans_signalled = True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        main_alive = main_alive and rec.is_alive()
        left = rec.processes()
        if not left:
            return res
        if not main_alive and not orphans_signalled:
            # The daemon is gone but left children: ask them too.
            for pid in left:
                _signal(pid, signal.SIGTERM)
            orphans_signalled = True
        time.sleep(poll)
    res.killed = True
    if rec.is_alive():
        if proc_pgid(rec.pid) == rec.pid:
            try:
                os.killpg(rec.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _signal(rec.pid, signal.SIGKILL)
    for pid in rec.processes():
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + kill_wait
    while time.monotonic() < deadline:
        if not rec.processes():
            return res
        time.sleep(poll)
    res.remaining = rec.processes()
    return res


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path | str, lines: int = 30, start: int = 0) -> str:
    """The last ``lines`` lines of ``path`` from byte offset ``start`` on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            begin = max(start, size - 64 * 1024)
            fh.seek(begin)
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def describe_pids(pids: Iterable[int]) -> str:
    return ", ".join(str(p) for p in pids)

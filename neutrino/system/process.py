"""Long-running host processes (daemons) tracked by pidfile + a marker uuid.

A ``ProcessSpec`` says how to start one process and how to recognise it
later.  Recognition never uses a name pattern: the pid comes from the spec's
pidfile, and that pid counts as ours only while ``/proc/<pid>`` shows the
spec's ``uuid`` in the command line or in the environment (``start`` puts it
into the environment as ``NEUTRINO_PROCESS_UUID``, which children inherit
across a ``--detach`` fork).  ``stop`` signals only such a verified pid:
SIGTERM, then SIGKILL after ``timeout``.

Two start modes:

* ``daemonizes=True``: the program detaches itself and writes ``pidfile``
  (``ovsdb-server --detach --pidfile=...``); ``start`` runs it and waits for
  the pidfile.
* ``daemonizes=False``: ``start`` spawns it with ``start_new_session=True``
  (its own session, so a terminal's signals do not reach it), stdout/stderr
  to ``log_path``, and writes the pidfile itself.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from neutrino.system.errors import ProcessError, translate
from neutrino.system.exec import mapped_errors, netns_argv

LOG = logging.getLogger(__name__)
UUID_ENV = "NEUTRINO_PROCESS_UUID"
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessSpec:
    argv: tuple[str, ...]
    pidfile: Path
    netns: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    uuid: str | None = None
    daemonizes: bool = False
    log_path: Path | None = None
    cwd: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        object.__setattr__(self, "pidfile", Path(self.pidfile))
        if not self.argv:
            raise ValueError("ProcessSpec needs an argv")

    def environment(self) -> dict[str, str]:
        """The variables ``start`` adds to the inherited environment."""
        env = dict(self.env)
        if self.uuid:
            env[UUID_ENV] = self.uuid
        return env


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------


def proc_state(pid: int) -> str | None:
    """One-letter state from /proc/<pid>/stat (R, S, Z, ...), None if there is no such pid."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    return rest[0].decode() if rest else None


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a dead child not yet reaped)."""
    return proc_state(pid) not in (None, "Z", "X", "x")


def _read_nul_list(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]


def proc_cmdline(pid: int) -> list[str]:
    return _read_nul_list(PROC / str(pid) / "cmdline")


def proc_environ(pid: int) -> dict[str, str]:
    env = {}
    for item in _read_nul_list(PROC / str(pid) / "environ"):
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
    return env


def _environ_settled(pid: int) -> dict[str, str]:
    """``proc_environ`` of one process, asked again for a moment while it reads empty: during
    an exec (``ip netns exec`` becoming the daemon) the kernel shows no environment, and our
    processes always have one."""
    env = proc_environ(pid)
    for delay in (0.005, 0.02, 0.05):
        if env or not is_running(pid):
            break
        time.sleep(delay)
        env = proc_environ(pid)
    return env


def read_pidfile(path: Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Spec verbs
# --------------------------------------------------------------------------


def is_ours(spec: ProcessSpec, pid: int) -> bool:
    """Does running ``pid`` belong to ``spec``?  (uuid in cmdline or environ; without a uuid,
    the same executable name in argv[0])."""
    if not is_running(pid):
        return False
    cmdline = proc_cmdline(pid)
    if spec.uuid:
        if any(spec.uuid in arg for arg in cmdline):
            return True
        return _environ_settled(pid).get(UUID_ENV) == spec.uuid
    exe = os.path.basename(spec.argv[0])
    return bool(cmdline) and os.path.basename(cmdline[0]).startswith(exe)


def pid_of(spec: ProcessSpec) -> int | None:
    """The verified pid of ``spec``'s running process, or None."""
    pid = read_pidfile(spec.pidfile)
    return pid if pid is not None and is_ours(spec, pid) else None


def alive(spec: ProcessSpec) -> bool:
    return pid_of(spec) is not None


def _wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 1.5, 0.1)


def start(spec: ProcessSpec, *, timeout: float = 10) -> int:
    """Start ``spec`` unless it already runs; return its pid.

    Blocks until the pidfile names a live process of ours (``ProcessError``
    after ``timeout``).  Idempotent: a running instance is returned as is.
    """
    pid = pid_of(spec)
    if pid is not None:
        return pid
    spec.pidfile.parent.mkdir(parents=True, exist_ok=True)
    env = spec.environment()
    full = netns_argv(spec.argv, spec.netns)
    if spec.daemonizes:
        # Output goes to a file, not a pipe: a daemon child that keeps the
        # inherited stdout open must not make us wait for EOF.
        with tempfile.TemporaryFile() as out, mapped_errors(full, timeout):
            proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=spec.cwd,
            )
            rc = proc.wait(timeout=timeout)
            if rc != 0:
                out.seek(0)
                raise translate(full, rc, out.read().decode("utf-8", "replace"))
    else:
        log = open(spec.log_path, "ab") if spec.log_path else None
        try:
            with mapped_errors(full, timeout):
                proc = subprocess.Popen(
                    full,
                    stdin=subprocess.DEVNULL,
                    stdout=log if log is not None else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env},
                    cwd=spec.cwd,
                    start_new_session=True,
                )
        finally:
            if log is not None:
                log.close()
        tmp = spec.pidfile.with_name(spec.pidfile.name + ".tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(spec.pidfile)
    # The pid is kept from the check that found it: asked again, a process that is
    # exec'ing (``ip netns exec`` becoming tcpdump) can show an empty environment for a
    # moment, and that moment is no reason to fail a start that succeeded.
    found: list[int] = []

    def up() -> bool:
        pid = pid_of(spec)
        if pid is not None:
            found.append(pid)
        return pid is not None

    if not _wait_for(up, timeout):
        raise ProcessError(
            f"{spec.argv[0]} did not come up within {timeout}s (pidfile {spec.pidfile}: {read_pidfile(spec.pidfile)})"
        )
    LOG.debug("started %s pid %d", spec.argv[0], found[0])
    return found[0]


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (it then vanishes instead of staying a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_pid(pid: int, *, timeout: float = 5) -> None:
    """SIGTERM ``pid``, wait until it is gone or a zombie, then SIGKILL if needed.

    Only call this with a pid verified by ``is_ours``.  A zombie counts as
    gone: a detached daemon is reaped by PID 1, which may take seconds.
    """
    if not signal_pid(pid, signal.SIGTERM):
        return

    def gone() -> bool:
        _reap(pid)
        return not is_running(pid)

    if _wait_for(gone, timeout):
        return
    LOG.warning("pid %d ignored SIGTERM for %.1fs; sending SIGKILL", pid, timeout)
    signal_pid(pid, signal.SIGKILL)
    if not _wait_for(gone, 5):
        raise ProcessError(f"pid {pid} survived SIGKILL")


def stop_all(specs: list[ProcessSpec] | tuple[ProcessSpec, ...], *, timeout: float = 5) -> None:
    """Stop several processes in parallel: SIGTERM every verified pid first, then wait
    (SIGKILL stragglers).  Pidfiles are removed.  Idempotent."""
    pids = [pid for pid in (pid_of(s) for s in specs) if pid is not None]
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout

    def gone(pid: int) -> bool:
        _reap(pid)
        return not is_running(pid)

    for pid in pids:
        if not _wait_for(functools.partial(gone, pid), max(0.0, deadline - time.monotonic())):
            stop_pid(pid, timeout=0.5)
    for s in specs:
        try:
            s.pidfile.unlink()
        except FileNotFoundError:
            pass


def stop(spec: ProcessSpec, *, timeout: float = 5) -> None:
    """Stop ``spec``'s process if it runs (verified pid only) and remove its pidfile."""
    pid = pid_of(spec)
    if pid is not None:
        stop_pid(pid, timeout=timeout)
    try:
        spec.pidfile.unlink()
    except FileNotFoundError:
        pass


__all__ = [
    "ProcessSpec",
    "UUID_ENV",
    "alive",
    "is_ours",
    "is_running",
    "pid_of",
    "proc_cmdline",
    "proc_environ",
    "proc_state",
    "read_pidfile",
    "signal_pid",
    "start",
    "stop",
    "stop_all",
    "stop_pid",
]

"""neutrino.system.process: start / alive / stop by pidfile + uuid, never by name."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from neutrino.system import process
from neutrino.system.errors import CommandNotFound, ProcessError

SLEEP = (sys.executable, "-c", "import time; time.sleep(60)")


def _spec(tmp_path: Path, **kw) -> process.ProcessSpec:
    base = dict(argv=SLEEP, pidfile=tmp_path / "p.pid", uuid=f"t-{uuid.uuid4()}", log_path=tmp_path / "p.log")
    return process.ProcessSpec(**{**base, **kw})


def test_start_alive_stop(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    pid = process.start(spec)
    try:
        assert process.alive(spec) and process.pid_of(spec) == pid
        assert process.read_pidfile(spec.pidfile) == pid
        assert process.proc_environ(pid)[process.UUID_ENV] == spec.uuid
        assert os.getsid(pid) == pid  # own session
        assert process.start(spec) == pid  # idempotent
    finally:
        process.stop(spec)
    assert not process.is_running(pid)
    assert not spec.pidfile.exists()
    process.stop(spec)  # idempotent


def test_foreign_pid_in_pidfile_is_never_signalled(tmp_path: Path) -> None:
    """A pidfile naming a process without our uuid (pid reuse) is not ours."""
    other = subprocess.Popen(SLEEP)
    try:
        spec = _spec(tmp_path)
        spec.pidfile.write_text(f"{other.pid}\n")
        assert not process.alive(spec)
        process.stop(spec)
        assert other.poll() is None  # still running
        assert not spec.pidfile.exists()
    finally:
        other.kill()
        other.wait()


def test_uuid_in_cmdline_counts(tmp_path: Path) -> None:
    marker = f"mark-{uuid.uuid4()}"
    spec = _spec(tmp_path, argv=(sys.executable, "-c", "import time,sys; time.sleep(60)", marker), uuid=marker)
    pid = process.start(spec)
    try:
        assert process.is_ours(spec, pid)
        assert marker in process.proc_cmdline(pid)
    finally:
        process.stop(spec)


def test_sigterm_ignored_then_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    spec = _spec(tmp_path, argv=(sys.executable, "-c", code))
    pid = process.start(spec)
    log = tmp_path / "p.log"
    while "ready" not in (log.read_text() if log.exists() else ""):
        pass
    process.stop(spec, timeout=0.3)
    assert not process.is_running(pid)


def test_stop_all_parallel(tmp_path: Path) -> None:
    specs = [_spec(tmp_path, pidfile=tmp_path / f"{i}.pid") for i in range(3)]
    pids = [process.start(s) for s in specs]
    process.stop_all(specs)
    assert not any(process.is_running(p) for p in pids)
    process.stop_all(specs)


def test_daemonizing_program(tmp_path: Path) -> None:
    """daemonizes=True: the program forks, writes the pidfile and its parent exits."""
    pidfile = tmp_path / "d.pid"
    code = (
        "import os, sys, time\n"
        "if os.fork(): sys.exit(0)\n"
        "os.setsid()\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    spec = _spec(tmp_path, argv=(sys.executable, "-c", code), pidfile=pidfile, daemonizes=True)
    pid = process.start(spec)
    try:
        assert process.alive(spec) and pid != os.getpid()
    finally:
        process.stop(spec)
    assert not process.is_running(pid)


def test_start_failures(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFound):
        process.start(_spec(tmp_path, argv=("/nonexistent/neutrino-daemon",)))
    # A "daemon" that exits without writing its pidfile.  The timeout leaves a loaded
    # machine time to start the interpreter (0.3 s was flaky under CI load).
    quitter = _spec(tmp_path, argv=(sys.executable, "-c", "pass"), daemonizes=True)
    with pytest.raises(ProcessError):
        process.start(quitter, timeout=3)


def test_proc_helpers_on_missing_pid() -> None:
    pid = 2**22 + 4321
    assert process.proc_state(pid) is None and not process.is_running(pid)
    assert process.proc_cmdline(pid) == [] and process.proc_environ(pid) == {}
    assert not process.signal_pid(pid, 0)

"""neutrino.cli.process: pidfiles, pid verification, daemons."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from neutrino.cli import process


def _sleeper(tmp_path: Path, name: str = "sleeper", code: str = "import time; time.sleep(60)"):
    pf = process.PidFile(tmp_path / "run" / f"{name}.pid")
    proc, rec = process.spawn(
        name, [sys.executable, "-c", code], pidfile=pf, log_path=tmp_path / "log" / f"{name}.log", cwd=tmp_path
    )
    return pf, proc, rec


def _gone(proc) -> bool:
    return proc.poll() is not None


def test_proc_helpers_on_self() -> None:
    me = os.getpid()
    assert process.is_running(me)
    assert process.proc_state(me) in ("R", "S")
    assert process.proc_start_time(me) == process.proc_start_time(me) > 0
    assert process.proc_cmdline(me)[0]
    assert process.proc_environ(me).get("PATH") == os.environ.get("PATH")
    assert me in process.all_pids()


def test_proc_helpers_on_missing_pid() -> None:
    pid = 2**22 + 12345  # above pid_max's default ceiling
    assert not process.is_running(pid)
    assert process.proc_start_time(pid) is None
    assert process.proc_cmdline(pid) == []
    assert process.proc_environ(pid) == {}
    assert process.find_by_token("") == []


def test_pidfile_roundtrip_missing_and_garbled(tmp_path: Path) -> None:
    pf = process.PidFile(tmp_path / "run" / "x.pid")
    assert pf.read() is None
    rec = process.PidRecord("x", 123, 456, "tok", ["a", "b c"], 1.5, {"endpoints": {"n": "u"}})
    pf.write(rec)
    assert pf.read() == rec
    assert pf.name == "x"
    assert [p.path for p in process.pidfiles(tmp_path / "run")] == [pf.path]
    assert not list((tmp_path / "run").glob(".*tmp"))  # atomic write left nothing behind
    pf.path.write_text("12345\n")
    with pytest.raises(process.PidFileError):
        pf.read()
    pf.path.write_text("{not json")
    with pytest.raises(process.PidFileError):
        pf.read()
    pf.remove()
    pf.remove()  # twice is fine
    assert process.pidfiles(tmp_path / "nope") == []


def test_spawn_records_a_daemon_in_its_own_session(tmp_path: Path) -> None:
    pf, proc, rec = _sleeper(tmp_path)
    try:
        assert pf.read() == rec
        assert rec.is_alive()
        assert rec.start_time == process.proc_start_time(proc.pid)
        assert os.getsid(proc.pid) == proc.pid  # new session
        # Read once the child has exec'd: during the exec its environment reads empty.
        deadline = time.monotonic() + 5
        while not (env := process.proc_environ(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert env[process.TOKEN_ENV] == rec.token
        assert process.find_by_token(rec.token) == [proc.pid]
        assert rec.processes() == [proc.pid]
        assert (tmp_path / "log" / "sleeper.log").exists()
    finally:
        res = process.stop(rec, timeout=5)
    assert res.was_running and not res.killed and res.pids == [proc.pid]
    assert _gone(proc) and proc.returncode == -signal.SIGTERM
    assert not rec.is_alive()
    assert process.stop(rec).was_running is False  # safe twice


def test_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    pf, proc, rec = _sleeper(tmp_path)
    try:
        # The same pid with another start time: a different process for us.
        forged = process.PidRecord(rec.name, rec.pid, rec.start_time + 1, "other-token", rec.argv)
        assert not forged.is_alive()
        assert forged.processes() == []
        res = process.stop(forged, timeout=0.2)
        assert not res.was_running
        assert rec.is_alive() and proc.poll() is None
    finally:
        process.stop(rec, timeout=5)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    pf, proc, rec = _sleeper(tmp_path, "stubborn", code)
    assert process.wait_for(lambda: "ready" in process.tail(tmp_path / "log" / "stubborn.log"), 10)
    t0 = time.monotonic()
    res = process.stop(rec, timeout=0.5)
    assert res.was_running and res.killed and not res.remaining
    assert time.monotonic() - t0 < 5
    proc.wait(5)
    assert proc.returncode == -signal.SIGKILL


def test_stop_finds_children_of_a_crashed_daemon(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('spawned', flush=True)"
    )
    pf, proc, rec = _sleeper(tmp_path, "crashy", code)
    proc.wait(10)  # the daemon itself is gone, its child lives on
    assert process.wait_for(lambda: len(process.find_by_token(rec.token)) == 1, 10)
    orphan = process.find_by_token(rec.token)[0]
    assert not rec.is_alive()
    assert rec.processes() == [orphan]
    res = process.stop(rec, timeout=5)
    assert res.was_running and res.pids == [orphan] and not res.remaining
    assert not process.is_running(orphan)


def test_tail(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.tail(p, 3) == "line 97\nline 98\nline 99"
    start = len("".join(f"line {i}\n" for i in range(98)))
    assert process.tail(p, 10, start=start) == "line 98\nline 99"
    assert process.tail(tmp_path / "missing") == ""

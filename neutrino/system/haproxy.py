"""haproxy processes (the metadata proxies, one per router / network, in its namespace).

The configuration text comes from the pure renderer
(``neutrino.agents.metadata.haproxy``); this module writes it, starts,
restarts and stops the process.  haproxy daemonises and writes its pidfile;
a pid is ours only while its command line names the uuid (the conf path).
As Neutron does, a changed configuration (ignoring the pidfile line)
rewrites the file and restarts the proxy; an unchanged one that runs is left
alone, so ``ensure`` is cheap and idempotent.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from neutrino.system import process
from neutrino.system.process import ProcessSpec

LOG = logging.getLogger(__name__)


def _same(old: str | None, new: str) -> bool:
    def strip(t: str) -> list[str]:
        return [ln for ln in t.splitlines() if not ln.strip().startswith("pidfile")]

    return old is not None and strip(old) == strip(new)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ensure(spec: ProcessSpec, conf: Path, text: str) -> str:
    """Make ``spec``'s haproxy run with configuration ``text`` (written to ``conf``).

    Returns "running" (nothing to do), "started" or "restarted"."""
    same = _same(_read(conf), text)
    running = process.alive(spec)
    if same and running:
        return "running"
    if not same:
        _write(conf, text)
    if running:
        process.stop(spec, timeout=5)
        process.start(spec, timeout=10)
        return "restarted"
    process.start(spec, timeout=10)
    return "started"


def reload(spec: ProcessSpec) -> None:
    """Restart with the configuration on disk (haproxy has no in-place reload without master mode)."""
    process.stop(spec, timeout=5)
    process.start(spec, timeout=10)


def stop(spec: ProcessSpec, conf: Path | None = None) -> None:
    """Stop the proxy (verified pid only), remove its pidfile and, if given, its conf.  Idempotent."""
    process.stop(spec, timeout=5)
    if conf is not None:
        try:
            conf.unlink()
        except FileNotFoundError:
            pass


def alive(spec: ProcessSpec) -> bool:
    return process.alive(spec)

"""Run one host command (argv list, optionally inside a network namespace).

The single place where ``neutrino.system`` starts a short-lived subprocess.
Commands are argv lists, never shell strings; ``netns=`` prefixes
``ip netns exec NS``; ``env=`` is merged over the caller's environment.
Failures are translated once, by ``mapped_errors()`` and
``neutrino.system.errors.translate()``, into the tree drawn in
``neutrino/system/errors.py``.

Adapters take a ``runner`` (any callable with ``run``'s signature), so unit
tests can pass a recording fake and check the argv they would run.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from neutrino.system.errors import CommandNotFound, CommandTimeout, translate

LOG = logging.getLogger(__name__)
_EXEC_FAILED = re.compile(r'^exec of "[^"]*" failed: No such file or directory')


@dataclass(frozen=True)
class Completed:
    """What a finished command left: its full argv (with any netns prefix), rc and output."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        netns: str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 30,
        check: bool = True,
    ) -> Completed: ...


def netns_argv(argv: Sequence[str], netns: str | None = None) -> list[str]:
    """``argv``, prefixed with ``ip netns exec NS`` when ``netns`` is set (pure)."""
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("empty argv")
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


@contextmanager
def mapped_errors(argv: Sequence[str], timeout: float) -> Iterator[None]:
    """Turn ``subprocess``/OS exceptions for ``argv`` into ``HostError`` subclasses."""
    try:
        yield
    except FileNotFoundError as exc:
        raise CommandNotFound(argv) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(argv, timeout) from exc


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30,
    check: bool = True,
) -> Completed:
    """Run ``argv`` and wait for it.

    Blocks for at most ``timeout`` seconds (``CommandTimeout`` after that; the
    child is killed).  With ``check`` a non-zero exit raises the
    ``CommandFailed`` subclass picked from its stderr; without it the
    ``Completed`` is returned either way.  ``input`` is written to stdin.
    """
    full = netns_argv(argv, netns)
    proc_env = {**os.environ, **env} if env else None
    LOG.debug("run %s%s", " ".join(full), f" env={dict(env)}" if env else "")
    with mapped_errors(full, timeout):
        proc = subprocess.run(
            full,
            input=input,
            capture_output=True,
            text=True,
            env=proc_env,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    done = Completed(tuple(full), proc.returncode, proc.stdout, proc.stderr)
    if netns and proc.returncode != 0 and _EXEC_FAILED.match(proc.stderr):
        # ``ip netns exec`` itself could not exec the program: not installed.
        raise CommandNotFound(list(argv))
    if check and proc.returncode != 0:
        raise translate(full, proc.returncode, proc.stderr, proc.stdout)
    return done


__all__ = ["Completed", "Runner", "mapped_errors", "netns_argv", "run"]

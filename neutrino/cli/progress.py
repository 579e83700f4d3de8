"""Step lines of a long CLI command on stderr (``neutrino demo``)."""

from __future__ import annotations

import sys
import time


class Progress:
    """One line per step on stderr; a waiting step rewrites its line on a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._open = False
        self._last = 0.0

    def say(self, msg: str) -> None:
        if self.quiet:
            return
        if self._open:
            sys.stderr.write("\n")
            self._open = False
        sys.stderr.write(f"[{time.monotonic() - self.t0:5.1f}s] {msg}\n")
        sys.stderr.flush()

    def update(self, msg: str) -> None:
        """A line that the next update replaces (on a terminal; else printed when it changes)."""
        if self.quiet:
            return
        now = time.monotonic()
        line = f"[{now - self.t0:5.1f}s] {msg}"
        if self.tty:
            sys.stderr.write(f"\r\033[K{line}")
            self._open = True
        elif now - self._last >= 1.0:  # a log file gets at most one such line a second
            sys.stderr.write(line + "\n")
            self._last = now
        sys.stderr.flush()

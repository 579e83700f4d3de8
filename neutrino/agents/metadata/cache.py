"""Answers of the metadata API that the metadata agent may replay (pure, no I/O).

The metadata API says, with ``Cache-Control: max-age=N`` on a GET answer,
for how long it would give that instance the same answer (the rest of the
life of its own per-instance cache entry, ``metadata_cache_expiration``);
``no-store`` (or no header) means never replay.  The agent keeps such an
answer for at most that long, so what an instance reads is never older
than what the API itself would have served it.

An entry is keyed by who asked as the agent resolved it, never by anything
the instance sent but the request target: ``(instance id, project id,
client address, target)``.  So an instance can only ever be given an answer
that was made for itself.  What is stored at all is decided by the caller
(``proxy.MetadataProxy``: GETs without body, query or IMDSv2 token headers,
answered 200).

Memory is bounded: bodies over ``MAX_BODY`` are not kept, and past
``max_bytes`` the oldest entries go first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["AnswerCache", "MAX_AGE", "MAX_BODY", "max_age"]

#: Larger answers (user data can reach 64 KiB) are always fetched.
MAX_BODY = 16 * 1024
#: Whatever the API says, an answer is not replayed for longer than this.
MAX_AGE = 300


def max_age(cache_control: str | None) -> int:
    """Seconds an answer may be replayed per its ``Cache-Control`` (0: never)."""
    if not cache_control:
        return 0
    age = 0
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age":
            value = value.strip()
            if not value.isdigit() or not value.isascii() or len(value) > 9:
                return 0
            age = min(int(value), MAX_AGE)
    return age


class AnswerCache:
    """``key -> (status, body, content type)`` until the expiry the API allowed."""

    def __init__(self, max_bytes: int = 8 * 1024 * 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._entries: dict[Hashable, tuple[float, int, bytes, str]] = {}  # insertion order = age

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> tuple[int, bytes, str] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._drop(key)
            return None
        return entry[1], entry[2], entry[3]

    def put(self, key: Hashable, body: bytes, content_type: str, cache_control: str | None) -> bool:
        """Keep a 200 answer if ``cache_control`` allows it; True when kept."""
        age = max_age(cache_control)
        if age <= 0 or len(body) > MAX_BODY:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self.clock() + age, 200, body, content_type)
        self.bytes += len(body) + 200  # + a rough per-entry overhead
        while self.bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self.bytes -= len(entry[2]) + 200

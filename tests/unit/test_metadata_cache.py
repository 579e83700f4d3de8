"""Answers the metadata agent may replay (neutrino.agents.metadata.cache): only what the API allows,
for at most as long as it allows, within a memory bound."""

from __future__ import annotations

import pytest

from neutrino.agents.metadata.cache import MAX_AGE, MAX_BODY, AnswerCache, max_age


@pytest.mark.parametrize(
    "header, age",
    [
        ("max-age=14", 14),
        ("Max-Age = 3", 0),
        ("public, max-age=7", 7),
        ("max-age=7, no-store", 0),
        ("no-cache", 0),
        ("no-store", 0),
        ("max-age=x", 0),
        ("max-age=-1", 0),
        ("", 0),
        (None, 0),
        ("max-age=999999999", MAX_AGE),
        ("max-age=9999999999", 0),
    ],
)
def test_max_age(header: str | None, age: int) -> None:
    assert max_age(header) == age


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kept_until_the_allowed_age_only() -> None:
    clock = Clock()
    c = AnswerCache(clock=clock)
    assert c.put(("vm-1", "p", "10.0.0.5", "/latest/meta-data/instance-id"), b"i-1", "text/plain", "max-age=5")
    assert not c.put(("vm-1", "p", "10.0.0.5", "/x"), b"x", "text/plain", "no-store")
    assert not c.put(("vm-1", "p", "10.0.0.5", "/y"), b"y", "text/plain", None)
    assert c.get(("vm-1", "p", "10.0.0.5", "/latest/meta-data/instance-id")) == (200, b"i-1", "text/plain")
    assert c.get(("vm-2", "p", "10.0.0.5", "/latest/meta-data/instance-id")) is None
    clock.now += 4.9
    assert c.get(("vm-1", "p", "10.0.0.5", "/latest/meta-data/instance-id")) is not None
    clock.now += 0.1
    assert c.get(("vm-1", "p", "10.0.0.5", "/latest/meta-data/instance-id")) is None
    assert len(c) == 0 and c.bytes == 0


def test_memory_bound_drops_the_oldest_first() -> None:
    c = AnswerCache(max_bytes=3 * (1000 + 200))
    for i in range(5):
        assert c.put(i, b"x" * 1000, "text/plain", "max-age=60")
    assert [k for k in range(5) if c.get(k) is not None] == [2, 3, 4]
    assert c.bytes <= c.max_bytes
    assert not c.put("big", b"x" * (MAX_BODY + 1), "text/plain", "max-age=60")
    c.put(4, b"y", "text/plain", "max-age=60")  # replaced, not counted twice
    assert c.get(4) == (200, b"y", "text/plain") and c.bytes == 2 * 1200 + 201

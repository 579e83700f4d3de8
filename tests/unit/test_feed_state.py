"""The pure desired-state logic (neutrino.feed.state) and the commit signal."""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import time

import pytest

from neutrino.feed.signal import CommitSignal
from neutrino.feed.state import GapError, State, apply_changes, check_batch, comparable, from_snapshot


def ch(rev, resource, obj_id, action="create", body=None):
    if body is None and action != "delete":
        body = {"id": obj_id, "v": rev}
    return {"revision": rev, "resource": resource, "id": obj_id, "action": action, "project_id": "p", "body": body}


SNAP = {"revision": 5, "resources": {"networks": [{"id": "n1", "name": "a"}], "ports": [{"id": "p1"}], "subnets": []}}


def test_from_snapshot_keys_by_singular_type_and_id():
    s = from_snapshot(SNAP)
    assert s.revision == 5
    assert s.get("network", "n1") == {"id": "n1", "name": "a"}
    assert s.of("port") == {"p1": {"id": "p1"}}
    assert s.of("subnet") == {} and s.of("router") == {}


def test_from_snapshot_keeps_only_followed_types():
    s = from_snapshot(SNAP, ["port"])
    assert set(s.objects) == {"port"} and s.types == {"port"}


def test_apply_create_update_delete():
    s = from_snapshot(SNAP)
    s2 = apply_changes(
        s,
        [
            ch(6, "network", "n2"),
            ch(7, "network", "n1", "update", {"id": "n1", "name": "b"}),
            ch(8, "port", "p1", "delete"),
        ],
    )
    assert s2.revision == 8
    assert s2.of("network") == {"n1": {"id": "n1", "name": "b"}, "n2": {"id": "n2", "v": 6}}
    assert s2.of("port") == {}


def test_apply_does_not_mutate_its_input_and_shares_untouched_types():
    s = from_snapshot(SNAP)
    before = copy.deepcopy(s.objects)
    s2 = apply_changes(s, [ch(6, "network", "n1", "delete")])
    assert s.objects == before and s.revision == 5
    assert s2.objects["port"] is s.objects["port"]


def test_replayed_changes_are_skipped():
    s = from_snapshot(SNAP)
    s2 = apply_changes(s, [ch(4, "network", "n1", "delete"), ch(5, "port", "p1", "delete"), ch(6, "port", "p2")])
    assert s2.get("network", "n1") is not None and s2.get("port", "p1") is not None
    assert s2.get("port", "p2") is not None


def test_unfollowed_types_are_ignored_but_advance_the_revision():
    s = from_snapshot(SNAP, ["port"])
    s2 = apply_changes(s, [ch(6, "network", "n9")])
    assert s2.revision == 6 and "network" not in s2.objects


def test_answer_revision_advances_an_empty_batch():
    s = from_snapshot(SNAP)
    assert apply_changes(s, [], 9).revision == 9
    assert apply_changes(s, []) is s


def test_delete_of_unknown_object_is_harmless():
    s = apply_changes(from_snapshot(SNAP), [ch(6, "router", "r1", "delete")])
    assert s.of("router") == {} and s.revision == 6


@pytest.mark.parametrize(
    "since, revision, revs",
    [
        (5, 7, [5]),
        (5, 7, [6, 6]),
        (5, 7, [7, 6]),
        (5, 6, [6, 7]),
        (5, 4, []),
    ],
)
def test_check_batch_rejects_answers_that_do_not_follow(since, revision, revs):
    with pytest.raises(GapError):
        check_batch(since, revision, [ch(r, "port", "x") for r in revs])


def test_check_batch_accepts_gaps_in_revision_numbers():
    check_batch(5, 12, [ch(7, "port", "x"), ch(11, "port", "y")])
    check_batch(5, 5, [])


def test_state_json_round_trip():
    s = apply_changes(from_snapshot(SNAP, ["network", "port"]), [ch(6, "port", "p2")])
    assert State.from_json(s.to_json()) == s


def test_comparable_drops_volatile_agent_fields():
    s = State(1, {"agent": {"a": {"id": "a", "alive": True, "heartbeat_timestamp": "x", "host": "h"}}})
    assert comparable(s) == {"agent": {"a": {"id": "a", "host": "h"}}}


def test_random_batches_equal_one_big_batch():
    """Folding in any split of the log gives the same state as folding it at once."""
    rng = random.Random(7)
    log, rev = [], 0
    for _ in range(300):
        rev += rng.choice((1, 1, 2))
        oid = f"o{rng.randrange(20)}"
        action = rng.choice(("create", "update", "delete"))
        log.append(ch(rev, rng.choice(("network", "port")), oid, action))
    whole = apply_changes(State(0), log)
    s, i = State(0), 0
    while i < len(log):
        j = i + rng.randrange(1, 30)
        # overlap with already-applied changes now and then (replays are skipped)
        start = max(0, i - rng.randrange(0, 3))
        s = apply_changes(s, log[start:j])
        i = j
    assert s == whole


# --- CommitSignal --------------------------------------------------------------------------
def test_signal_wakes_a_waiter_from_another_thread():
    sig = CommitSignal()

    async def main():
        gen = sig.generation
        threading.Timer(0.1, sig.notify, args=(42,)).start()
        t0 = time.monotonic()
        assert await sig.wait(gen, 5) is True
        return time.monotonic() - t0

    assert asyncio.run(main()) < 1.0
    assert sig.last_revision == 42


def test_signal_returns_at_once_if_a_commit_came_since_the_generation_was_read():
    sig = CommitSignal()

    async def main():
        gen = sig.generation
        sig.notify(1)
        return await sig.wait(gen, 5)

    t0 = time.monotonic()
    assert asyncio.run(main()) is True
    assert time.monotonic() - t0 < 0.5


def test_signal_times_out():
    sig = CommitSignal()

    async def main():
        return await sig.wait(sig.generation, 0.05)

    assert asyncio.run(main()) is False
    assert not sig._waiters


def test_notify_after_a_loop_closed_is_harmless():
    sig = CommitSignal()

    async def main():
        task = asyncio.ensure_future(sig.wait(sig.generation, 5))
        await asyncio.sleep(0.01)
        return task

    loop = asyncio.new_event_loop()
    task = loop.run_until_complete(main())
    task.cancel()
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    loop.close()
    sig.notify(3)  # no waiter left, nothing raised

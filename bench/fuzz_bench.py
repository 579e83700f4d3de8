#!/usr/bin/env python3
"""Fuzz bench: a longer property-based fuzzing run of the network API (issue 13).

    .venv/bin/python bench/fuzz_bench.py [--minutes 5] [--examples 10] [--roles demo,admin,other,reader]
                                         [--modes positive,negative] [--seed 1] [--db-url URL]

The same driver as the test budget (tests/security/test_fuzz_api.py, see
tests/security/fuzz_helpers.py): requests drawn by schemathesis from the
OpenAPI document the API serves, sent in process (no server, no network) with
fake tokens, on a seeded cloud.  Rounds: each round builds a fresh database
and cloud, and tries every operation ``--examples`` times per role and mode
with Hypothesis seed ``--seed + round``; rounds go on until ``--minutes`` are
spent (``--rounds N`` instead stops after N).

Prints the requests tried by operation and by status code, then every
problem (a 5xx, a 4xx not in Neutron's format, a rejected request that
committed writes, a documented operation answering 405) with the request
that reproduces it.  Exit status 1 when there was a problem.  ``--db-url``
runs on an empty PostgreSQL database instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neutrino import config  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.db.engine import Database  # noqa: E402 - imported after sys.path names the bench folder
from neutrino.db.migrate import upgrade  # noqa: E402 - imported after sys.path names the bench folder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tests.api.conftest import BASE_OVERRIDES, Api
from tests.security.fuzz_helpers import NEGATIVE, POSITIVE, Fuzzer, Problem, Stats  # noqa: E402 - imported after sys.path names the bench folder

MODES = {"positive": POSITIVE, "negative": NEGATIVE}


def fresh_api(workdir: Path, round_no: int, db_url: str) -> Api:
    """An API on an empty, migrated database (a new SQLite file, or ``db_url`` emptied)."""
    if db_url:
        from neutrino.db import tables

        db = Database(db_url)
        with db.engine.begin() as conn:
            tables.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    else:
        db = Database(f"sqlite:///{workdir / f'fuzz-{round_no}.db'}")
    upgrade(db.engine)
    cfg = config.defaults(workdir).with_overrides(dict(BASE_OVERRIDES))
    return Api(cfg, db)


def merge(total: Stats, part: Stats) -> None:
    total.by_op.update(part.by_op)
    total.by_status.update(part.by_status)
    for op, counts in part.by_op_status.items():
        total.by_op_status[op].update(counts)
    total.generated += part.generated
    total.skipped |= part.skipped


def print_stats(stats: Stats, seconds: float, rounds: int) -> None:
    print(f"\n{stats.total} requests in {seconds:.0f} s ({stats.total / max(seconds, 1e-9):.0f}/s), {rounds} round(s)")
    print("\nby status code:")
    for status, n in sorted(stats.by_status.items()):
        print(f"  {status}  {n:7d}")
    print("\nby operation (requests: status x count):")
    width = max((len(op) for op in stats.by_op), default=10)
    for op in sorted(stats.by_op):
        counts = stats.by_op_status[op]
        detail = ", ".join(f"{s}x{n}" for s, n in sorted(counts.items()))
        print(f"  {op:<{width}}  {stats.by_op[op]:6d}   {detail}")
    if stats.skipped:
        print(f"\nno negative cases (nothing to make invalid): {', '.join(sorted(stats.skipped))}")


def print_problems(problems: list[Problem], limit: int) -> None:
    rules = Counter(p.rule.split(":")[0] for p in problems)
    print(f"\n{len(problems)} problem(s): " + (", ".join(f"{r} x{n}" for r, n in rules.items()) or "none"))
    seen: set[tuple[str, str, int]] = set()
    shown = 0
    for p in problems:
        key = (p.rule, p.op, p.status)
        if key in seen:
            continue
        seen.add(key)
        print(str(p))
        shown += 1
        if shown >= limit:
            print(f"... (first {limit} distinct problems shown)")
            break


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="time budget (default 5)")
    ap.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0: time only)")
    ap.add_argument("--examples", type=int, default=10, help="requests per operation, role and mode per round")
    ap.add_argument("--roles", default="demo,admin,other,reader", help="tokens to fuzz as")
    ap.add_argument("--modes", default="positive,negative")
    ap.add_argument("--seed", type=int, default=1, help="Hypothesis seed of the first round")
    ap.add_argument("--only", default="", help="only operation ids containing this text")
    ap.add_argument("--db-url", default="", help="an empty PostgreSQL database to use (default: SQLite)")
    ap.add_argument("--show", type=int, default=30, help="distinct problems to print")
    args = ap.parse_args()

    roles = [r for r in args.roles.split(",") if r]
    modes = [MODES[m] for m in args.modes.split(",") if m]
    deadline = time.monotonic() + args.minutes * 60
    total = Stats()
    problems: list[Problem] = []
    t0 = time.monotonic()
    rounds = 0
    with tempfile.TemporaryDirectory(prefix="neutrino-fuzz-") as tmp:
        while time.monotonic() < deadline and (not args.rounds or rounds < args.rounds):
            api = fresh_api(Path(tmp), rounds, args.db_url)
            fuzzer = Fuzzer(api)
            try:
                fuzzer.run(
                    roles,
                    modes,
                    args.examples,
                    rng_seed=args.seed + rounds,
                    deadline=deadline,
                    only=lambda op_id: args.only in op_id,
                )
            finally:
                fuzzer.close()
                api.close()
            merge(total, fuzzer.stats)
            problems += fuzzer.problems
            rounds += 1
            print(
                f"round {rounds}: {fuzzer.stats.total} requests, {len(fuzzer.problems)} problem(s), "
                f"{time.monotonic() - t0:.0f} s",
                flush=True,
            )
    print_stats(total, time.monotonic() - t0, rounds)
    print_problems(problems, args.show)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Failed password logins: throttling per (user, client address) and Keystone's lockout.

Throttling (on by default; ``[identity] login_throttle_*``): after
``failures`` failed logins of one user from one client address, the next
attempt from that address for that user must wait ``delay`` seconds after the
last failure, and each further failure doubles the wait, up to ``max_delay``.
An attempt made while it must wait is refused (``LoginThrottled``, answered
429 with ``Retry-After``) without looking at the password, so waiting is the
only way on: 200 guesses take hours, not seconds.  The count is per address,
so one address guessing cannot keep the user (or anyone else) out from
elsewhere; a successful login from that address clears it.  A name that is
no user is throttled the same way, so throttling does not tell which users
exist.  A count is forgotten ``FORGET_AFTER`` seconds after its last failure.

Lockout (off by default; Keystone's ``[security_compliance]
lockout_failure_attempts`` / ``lockout_duration``): after that many
consecutive failures from anywhere the user is locked (``AccountLocked``,
answered 401 "The account is locked for user: <id>.", as Keystone) for
``lockout_duration`` seconds after the last failure (0: until an admin sets
the user enabled), whatever the password.  A success clears the count.

The counts live in the database (``login_failures``), not in memory, so all
API processes (``[DEFAULT] api_workers``, which share the listening sockets)
see the same counts and a restart does not reset them.  A check is one
indexed read; only failures (and the first success after them) write.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from neutrino.db import tables

LOG = logging.getLogger(__name__)

#: A failure count is dropped this many seconds after its last failure.
FORGET_AFTER = 24 * 3600.0
#: Seconds between two purges of forgotten counts (per process).
PURGE_INTERVAL = 600.0
#: A refused login is logged at most once per (user, address) in this many seconds.
LOG_INTERVAL = 60.0
#: The ``source`` of a user's count across all addresses (lockout).
ANY_SOURCE = ""
_t = tables.login_failures


class LoginThrottled(Exception):
    """Too many failures of this user from this address: wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class AccountLocked(Exception):
    """The user is locked (Keystone's lockout)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"The account is locked for user: {user_id}.")
        self.user_id = user_id


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers (see the module docstring); ``from_config`` reads them."""

    failures: int = 5
    delay: float = 1.0
    max_delay: float = 300.0
    lockout_attempts: int = 0
    lockout_duration: float = 1800.0

    @classmethod
    def from_config(cls, cfg: Any) -> ThrottlePolicy:
        ident, sc = cfg.identity, cfg.security_compliance
        return cls(
            max(0, ident.login_throttle_failures),
            max(0.0, float(ident.login_throttle_delay)),
            max(0.0, float(ident.login_throttle_max_delay)),
            max(0, sc.lockout_failure_attempts),
            max(0.0, float(sc.lockout_duration)),
        )

    def wait(self, failures: int) -> float:
        """Seconds an address must wait after its last failure, having failed ``failures`` times."""
        if not self.failures or failures < self.failures:
            return 0.0
        return min(self.max_delay, self.delay * 2.0 ** min(failures - self.failures, 64))

    def locked(self, failures: int, last_failure: float, now: float) -> bool:
        """Is a user with ``failures`` consecutive failures, the last at ``last_failure``, locked?"""
        if not self.lockout_attempts or failures < self.lockout_attempts:
            return False
        return not self.lockout_duration or now < last_failure + self.lockout_duration


def subject_of(user: dict | None, name: Any, domain_id: str | None) -> str:
    """The key of a login: the user's id, or ``?`` + a digest of the name asked for."""
    if user is not None:
        return str(user["id"])
    raw = f"{domain_id or ''}\0{name!s}".encode("utf-8", "replace")
    return "?" + hashlib.sha256(raw).hexdigest()[:63]


def _source(address: str | None) -> str:
    return (address or "unknown")[:64]


@dataclass
class _Seen:
    """What ``check`` found, so that a success writes only when there was something."""

    subject: str
    source: str
    stored: bool


class LoginGuard:
    """Throttling and lockout over the database (thread-safe; see the module docstring)."""

    def __init__(self, db: Any, policy: ThrottlePolicy, clock: Callable[[], float] | None = None) -> None:
        self.db, self.policy = db, policy
        self.clock = clock or time.time
        self._next_purge = 0.0
        self._logged: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.policy.failures or self.policy.lockout_attempts)

    # --- before the password is checked --------------------------------------------------
    def check(self, subject: str, address: str | None, who: str) -> _Seen:
        """Raise ``LoginThrottled`` or ``AccountLocked`` when this attempt must be refused.

        ``who`` names the user in log lines (name and id, or the name asked for)."""
        source = _source(address)
        if not self.enabled:
            return _Seen(subject, source, False)
        now = self.clock()
        with self.db.read() as conn:
            rows = {
                r.source: r
                for r in conn.execute(select(_t).where(_t.c.subject == subject, _t.c.source.in_((source, ANY_SOURCE))))
            }
        mine, anywhere = rows.get(source), rows.get(ANY_SOURCE)
        if mine is not None and now - mine.last_failure < FORGET_AFTER:
            ready_at = mine.last_failure + self.policy.wait(mine.failures)
            if now < ready_at:
                self._log_refusal(
                    subject,
                    source,
                    f"login throttled: user {who} from {source} after "
                    f"{mine.failures} failed logins; refused for {ready_at - now:.0f} s more",
                )
                raise LoginThrottled(ready_at - now)
        if (
            anywhere is not None
            and not subject.startswith("?")
            and self.policy.locked(anywhere.failures, anywhere.last_failure, now)
        ):
            self._log_refusal(
                subject,
                ANY_SOURCE,
                f"login refused: user {who} is locked after "
                f"{anywhere.failures} consecutive failed logins (this attempt from {source})",
            )
            raise AccountLocked(subject)
        return _Seen(subject, source, bool(rows))

    def _log_refusal(self, subject: str, source: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._logged.get((subject, source))
            if last is not None and now - last < LOG_INTERVAL:
                return
            if len(self._logged) > 10000:
                self._logged.clear()
            self._logged[(subject, source)] = now
        LOG.warning("%s", message)

    # --- after it was checked ---------------------------------------------------------------
    def failed(self, seen: _Seen, who: str) -> None:
        """Count a failed login (and say so when it starts a throttle or a lock)."""
        if not self.enabled:
            return
        now = self.clock()
        keys = [seen.source] if self.policy.failures else []
        if self.policy.lockout_attempts and not seen.subject.startswith("?"):
            keys.append(ANY_SOURCE)
        purge = now >= self._next_purge

        def write(uow: Any) -> dict[str, int]:
            counts = {}
            for source in keys:
                row = uow.conn.execute(
                    select(_t.c.failures, _t.c.last_failure).where(_t.c.subject == seen.subject, _t.c.source == source)
                ).first()
                if row is None:
                    uow.conn.execute(
                        _t.insert().values(subject=seen.subject, source=source, failures=1, last_failure=now)
                    )
                    counts[source] = 1
                    continue
                expired = now - row.last_failure >= FORGET_AFTER or (
                    source == ANY_SOURCE
                    and self.policy.lockout_duration
                    and row.failures >= self.policy.lockout_attempts
                    and now >= row.last_failure + self.policy.lockout_duration
                )
                counts[source] = 1 if expired else row.failures + 1
                # failures + 1 in SQL: concurrent failures in other API processes all count.
                uow.conn.execute(
                    update(_t)
                    .where(_t.c.subject == seen.subject, _t.c.source == source)
                    .values(failures=1 if expired else _t.c.failures + 1, last_failure=now)
                )
            if purge:
                uow.conn.execute(delete(_t).where(_t.c.last_failure < now - FORGET_AFTER))
            return counts

        counts = self.db.run_write(write)
        if purge:
            self._next_purge = now + PURGE_INTERVAL
        n = counts.get(seen.source, 0)
        if self.policy.failures and n >= self.policy.failures:
            LOG.warning(
                "failed login %d of user %s from %s: that address waits %.0f s before its next try",
                n,
                who,
                seen.source,
                self.policy.wait(n),
            )
        total = counts.get(ANY_SOURCE, 0)
        if self.policy.lockout_attempts and total == self.policy.lockout_attempts:
            how_long = (
                f"for {self.policy.lockout_duration:.0f} s"
                if self.policy.lockout_duration
                else "until an admin enables it"
            )
            LOG.warning(
                "user %s locked %s after %d consecutive failed logins (the last from %s)",
                who,
                how_long,
                total,
                seen.source,
            )

    def succeeded(self, seen: _Seen) -> None:
        """A successful login clears this address's count and the user's consecutive count."""
        if not seen.stored:
            return
        self.db.run_write(
            lambda uow: uow.conn.execute(
                delete(_t).where(_t.c.subject == seen.subject, _t.c.source.in_((seen.source, ANY_SOURCE)))
            )
        )


def forget_user(conn: Any, user_id: str) -> None:
    """Drop every count of ``user_id``, unlocking it (an admin enabled the user, set its
    password or deleted it; Keystone unlocks on enable).  In the caller's transaction."""
    conn.execute(delete(_t).where(_t.c.subject == user_id))


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))

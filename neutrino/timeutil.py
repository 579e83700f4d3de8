"""Timestamps in the two formats Neutron uses on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_iso() -> str:
    """Standard-attribute form: ``2026-11-27T14:21:06Z`` (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def agent_ts(epoch: float | None = None) -> str:
    """Agent form: ``2026-11-27 14:26:09.423089`` (UTC, microseconds, no zone)."""
    dt = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")

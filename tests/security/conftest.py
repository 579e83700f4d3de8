"""The security tier: one regression test per audit finding (issue 13) and the
cross-project checks, run on SQLite (tier ``security``) and again on
PostgreSQL (tier ``pg``, which keeps tests/api and tests/security).

The fixtures are the API tier's (``make_api``, ``api``; tokens admin, demo,
other, reader, service: see tests/api/conftest.py), plus ``compute_env`` for
the Nova subset (tests/api/compute_helpers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.compute_helpers import ComputeEnv
from tests.api.conftest import api, api_databases, api_db_url, make_api

__all__ = ["api", "api_databases", "api_db_url", "make_api"]


@pytest.fixture
def compute_env(api_db_url: str, tmp_path: Path) -> Iterator[ComputeEnv]:
    """Network + compute + image APIs in process, on a fresh database."""
    env = ComputeEnv(api_db_url, tmp_path)
    yield env
    env.close()

"""docs/api.md's table of announced extensions is exactly ``GET /v2.0/extensions``."""

from __future__ import annotations

import re
from pathlib import Path

from neutrino.api.extensions import EXTENSIONS, all_extensions

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _documented() -> dict[str, str]:
    text = DOC.read_text()
    section = text.split("## Extensions announced", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+)` \| (.+?) \|$", section, flags=re.M))


def test_the_table_lists_exactly_the_announced_aliases() -> None:
    assert _documented() == {alias: name for alias, (name, _desc) in EXTENSIONS.items()}


def test_the_server_announces_each_alias_once() -> None:
    aliases = [e["alias"] for e in all_extensions()]
    assert len(aliases) == len(set(aliases)) == len(EXTENSIONS)

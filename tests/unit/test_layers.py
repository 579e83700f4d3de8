"""The server's layers, read from the import graph (imports inside functions count too).

``resources/`` (the schema: attribute maps, converters, policy, list queries)
sits under ``services/``, which sits under the HTTP edge ``api/``.  An import
may only go down: a service never reaches into ``api/``, and the schema
reaches into neither services nor any HTTP side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_import_cycles import ROOT, import_graph

#: layer (a package) -> packages/modules none of its modules may import, even inside a function.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "neutrino.services": (
        "neutrino.api",
        "neutrino.server",
        "neutrino.cli",
        "neutrino.agents",
        # the other HTTP edges: each package's app.py (and the feed's routes.py)
        "neutrino.identity.app",
        "neutrino.compute.app",
        "neutrino.compute.image_app",
        "neutrino.metadata.app",
        "neutrino.feed.routes",
    ),
    "neutrino.resources": (
        "neutrino.services",
        "neutrino.api",
        "neutrino.server",
        "neutrino.cli",
        "neutrino.agents",
        "neutrino.feed",
        "neutrino.compute",
        "neutrino.identity",
        "neutrino.metadata",
    ),
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def upward_imports(graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``"importer -> imported"`` for every import from ``layer`` into one of ``forbidden``."""
    return sorted(
        f"{m} -> {dep}"
        for m, deps in graph.items()
        if _within(m, layer)
        for dep in deps
        if any(_within(dep, f) for f in forbidden)
    )


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """The rule is not vacuous: a function-level ``from pkg.api import x`` in a service is caught,
    a sibling package whose name merely starts with ``api`` is not."""
    files = {
        "pkg/__init__.py": "",
        "pkg/api/__init__.py": "",
        "pkg/api/limits.py": "X = 1\n",
        "pkg/apidoc.py": "",
        "pkg/services/__init__.py": "",
        "pkg/services/a.py": "import pkg.apidoc\n\ndef f():\n    from pkg.api import limits\n    return limits\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path / "pkg", inside_functions=True)
    assert upward_imports(graph, "pkg.services", ("pkg.api",)) == ["pkg.services.a -> pkg.api.limits"]


def test_the_layers_exist() -> None:
    """The packages the rules speak of are really there (a rename must update this file)."""
    graph = import_graph(ROOT, inside_functions=True)
    for layer in FORBIDDEN:
        assert layer in graph, layer
    for module in ("neutrino.api", *FORBIDDEN["neutrino.services"][4:]):
        assert module in graph, module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_goes_up_from(layer: str) -> None:
    found = upward_imports(import_graph(ROOT, inside_functions=True), layer, FORBIDDEN[layer])
    assert found == [], "upward imports: " + "; ".join(found)

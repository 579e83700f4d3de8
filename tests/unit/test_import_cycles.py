"""No import cycles in the ``neutrino`` package, read statically from its source.

The graph has one edge per module-level import (also those under a
module-level ``if``/``try``, not those inside functions or classes):
``import a.b`` names ``a.b``; ``from a import b`` names the module ``a.b``
when ``b`` is a submodule, else ``a``.  Relative imports are resolved.
Imports inside functions are left out on purpose: each such import must say
why in a comment; the layering checks below also read them, and so does the
check that no circle runs among the services even through such imports.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import neutrino

ROOT = Path(neutrino.__file__).parent

#: Module-level cycles tolerated for now, as frozensets of module names, each with its reason.
#: Empty: every module-level cycle of the package is gone; a new one fails the test.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def package_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``), for every ``.py`` under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        out[".".join(parts)] = (path, is_pkg)
    return out


def _module_level(stmts: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported (not those in functions or classes)."""
    out: list[ast.Import | ast.ImportFrom] = []
    for s in stmts:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            out.append(s)
        elif isinstance(s, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for block in ("body", "orelse", "finalbody"):
                out += _module_level(getattr(s, block, []))
            for handler in getattr(s, "handlers", []):
                out += _module_level(handler.body)
    return out


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_pkg: bool, known: set[str]) -> set[str]:
    """The package modules one import statement of module ``name`` imports."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    if node.level:
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        if sub in known:
            out.add(sub)
        elif source in known:
            out.add(source)
    return out


@functools.cache  # the package is parsed once per mode; callers only read the graph
def import_graph(root: Path, *, inside_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at module level; also in functions if asked)."""
    modules = package_modules(root)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = (
            [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if inside_functions
            else _module_level(tree.body)
        )
        graph[name] = set().union(*(_targets(n, name, is_pkg, known) for n in nodes)) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, edges = work[-1]
            w = next(edges, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_graph_builder_sees_from_imports_relative_imports_and_skips_function_bodies(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",  # submodule via from-import
            "pkg/b.py": "from .sub.c import thing\n",  # relative, names a module's attribute
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "import pkg.a\nthing = 1\n",
            "pkg/d.py": "def f():\n    from pkg import e\n",  # inside a function: not an edge
            "pkg/e.py": "try:\n    import pkg.d\nexcept ImportError:\n    pass\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set()
    assert graph["pkg.e"] == {"pkg.d"}
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.sub.c"})]
    assert frozenset({"pkg.d", "pkg.e"}) in cycles(import_graph(pkg, inside_functions=True))


def test_no_module_level_import_cycles_in_the_package() -> None:
    found = [c for c in cycles(import_graph(ROOT)) if c not in ALLOWED_CYCLES]
    assert not found, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_allowed_cycles_still_exist() -> None:
    """An allowlisted cycle that is gone must leave the list (so the list only shrinks)."""
    present = set(cycles(import_graph(ROOT)))
    assert [c for c in ALLOWED_CYCLES if c not in present] == []


@pytest.mark.parametrize("module", ["neutrino.feed.routes", "neutrino.feed.publisher"])
def test_the_feed_server_side_imports_no_service_even_inside_functions(module: str) -> None:
    """The feed gets its publishers and report handlers injected; it never reaches up into services."""
    graph = import_graph(ROOT, inside_functions=True)
    assert {m for m in graph[module] if m.startswith(("neutrino.services", "neutrino.api"))} == set()


def test_no_service_imports_the_feed_http_side_even_inside_functions() -> None:
    """Services get the feed passed in (``neutrino.feed.publisher.Feed``), not looked up by URL prefix."""
    graph = import_graph(ROOT, inside_functions=True)
    users = sorted(
        m for m, deps in graph.items() if m.startswith("neutrino.services") and "neutrino.feed.routes" in deps
    )
    assert users == []


def test_the_feed_is_off_every_cycle_even_counting_imports_inside_functions() -> None:
    """The former circle ran feed.routes (then feed/api.py) -> port_status/fip_status -> ... -> schedulers -> back."""
    tangled = [
        c for c in cycles(import_graph(ROOT, inside_functions=True)) if any(m.startswith("neutrino.feed") for m in c)
    ]
    assert tangled == []


def _services_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The part of ``graph`` among ``neutrino.services`` modules."""
    return {
        m: {d for d in deps if d.startswith("neutrino.services")}
        for m, deps in graph.items()
        if m.startswith("neutrino.services")
    }


def test_no_cycle_among_services_even_counting_imports_inside_functions() -> None:
    """A service reaches a service whose module imports its own through ``Deps`` (the feed
    recorders, the port and network hooks, filled by ``neutrino.api.factory``) or by injection
    (``TrunkService`` is given its ``PortService``), never by an import inside a function."""
    services = _services_graph(import_graph(ROOT, inside_functions=True))
    # The graph is read: known edges, the first of which is the other direction of a former circle.
    assert "neutrino.services.trunks" in services["neutrino.services.ports"]
    assert "neutrino.services.floatingips" in services["neutrino.services.l3"]
    assert "neutrino.services.ports" in services["neutrino.services.recorders"]
    found = cycles(services)
    assert not found, "service import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_services_graph_check_sees_a_circle_closed_inside_a_function(tmp_path: Path) -> None:
    """The check above would fail on the former shape: a module-level import one way, one
    inside a function the other way."""
    _write(
        tmp_path,
        {
            "neutrino/__init__.py": "",
            "neutrino/services/__init__.py": "",
            "neutrino/services/ports.py": "from neutrino.services.trunks import trunk_details\n",
            "neutrino/services/trunks.py": "def f():\n    from neutrino.services.ports import PortService\n",
        },
    )
    root = tmp_path / "neutrino"
    assert cycles(_services_graph(import_graph(root))) == []
    assert cycles(_services_graph(import_graph(root, inside_functions=True))) == [
        frozenset({"neutrino.services.ports", "neutrino.services.trunks"})
    ]

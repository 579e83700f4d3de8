"""The package's layers, read from the import graph (imports inside functions count too).

Every module of ``neutrino`` belongs to a *unit* (a package or module named in
``LAYERS``; the longest matching name wins), and each unit has a rank and a
side.  An import may go down or stay in its unit; it never goes up a rank,
and it crosses to another unit of the same rank only where ``SIDEWAYS`` says
why.  Sides: the server and the agents meet only through HTTP (the feed), so a
server unit imports no agent unit and the reverse; both import the ``BOTH``
units of rank 0 (host access, configuration, pure facts).  The tools (``cli``,
``testing``) run both sides and may import either.

The ranks, bottom up (docs/architecture.md, "Import layers", says the same):

0. ``system`` (host access) and ``db`` (tables) at the bottom, with the modules
   that import no other layer: ``config``, ``errors``, ``context``, the HTTP
   plumbing every edge shares (``asgi``, ``request_limits``) and the pure facts
   both sides read (``shared``, ``ip_protocols``, ``ipam.addresses``, the feed's
   type names ``feed.resources``);
1. the domain: ``resources`` (schema), ``ipam``, ``ml2``, ``identity`` (the
   Keystone store and handlers), the server side of the feed (``feed.log``,
   ``signal``, ``publisher``); on the agents' side the feed client
   (``feed.client``, ``feed.state``);
2. ``services`` (the network resources); on the agents' side ``agents``;
3. ``compute`` and ``metadata`` (built on the network services); ``fakes``
   (fakes of ``system`` and of the OVS flow table, for the agents' tests);
4. the HTTP edges, each its own room: ``api`` (Neutron), ``feed.routes``,
   ``identity.app``, ``compute.app``, ``compute.image_app``, ``metadata.app``;
5. ``server`` (builds the feed, the services and every edge);
6. ``cli``; 7. ``testing`` (helpers for the test tiers; nothing imports it).
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_import_cycles import ROOT, import_graph, package_modules

BOTH, SERVER, AGENT, TOOLS = "both", "server", "agent", "tools"

#: Unit -> (rank, side).  A new package or top-level module must be placed here
#: (``test_every_module_has_a_unit``).
LAYERS: dict[str, tuple[int, str]] = {
    "neutrino": (0, BOTH),  # the package's empty __init__
    "neutrino.system": (0, BOTH),
    "neutrino.config": (0, BOTH),
    "neutrino.config_checks": (0, BOTH),
    "neutrino.timeutil": (0, BOTH),
    "neutrino.shared": (0, BOTH),
    "neutrino.ip_protocols": (0, BOTH),
    "neutrino.ipam.addresses": (0, BOTH),
    "neutrino.feed.resources": (0, BOTH),
    "neutrino.pki": (0, BOTH),  # the CA and the TLS contexts: servers, the CLI and the agents use them
    "neutrino.db": (0, SERVER),
    "neutrino.errors": (0, SERVER),
    "neutrino.context": (0, SERVER),
    "neutrino.asgi": (0, SERVER),
    "neutrino.request_limits": (0, SERVER),
    "neutrino.resources": (1, SERVER),
    "neutrino.ipam": (1, SERVER),
    "neutrino.ml2": (1, SERVER),
    "neutrino.identity": (1, SERVER),
    "neutrino.feed": (1, SERVER),
    "neutrino.feed.state": (1, AGENT),
    "neutrino.feed.client": (1, AGENT),
    "neutrino.services": (2, SERVER),
    "neutrino.agents": (2, AGENT),
    "neutrino.compute": (3, SERVER),
    "neutrino.metadata": (3, SERVER),
    "neutrino.fakes": (3, AGENT),
    "neutrino.api": (4, SERVER),
    "neutrino.feed.routes": (4, SERVER),
    "neutrino.identity.app": (4, SERVER),
    "neutrino.compute.app": (4, SERVER),
    "neutrino.compute.image_app": (4, SERVER),
    "neutrino.metadata.app": (4, SERVER),
    "neutrino.server": (5, SERVER),
    "neutrino.cli": (6, TOOLS),
    "neutrino.testing": (7, TOOLS),
}

#: (importer unit, imported unit) of the same rank, each with its reason.  Nothing else crosses sideways.
SIDEWAYS: dict[tuple[str, str], str] = {
    ("neutrino.db", "neutrino.timeutil"): "rows carry timestamps in the API's format",
    ("neutrino.config_checks", "neutrino.config"): "the checks read the typed Config",
    (
        "neutrino.request_limits",
        "neutrino.pki",
    ): "the HTTP protocol puts the client certificate's identity (pki.tls.Peer) into the scope",
    ("neutrino.feed.client", "neutrino.feed.state"): "the client applies what it reads with the pure state logic",
    (
        "neutrino.api",
        "neutrino.feed.routes",
    ): "the network API serves the feed's routes on its listener (make_network_api)",
}


def unit_of(module: str, layers: dict[str, tuple[int, str]] = LAYERS) -> str | None:
    """The unit ``module`` belongs to: the longest name in ``layers`` that is it or a package above it."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in layers:
            return name
    return None


def violations(
    graph: dict[str, set[str]],
    layers: dict[str, tuple[int, str]] = LAYERS,
    sideways: dict[tuple[str, str], str] = SIDEWAYS,
) -> list[str]:
    """``"importer -> imported (why)"`` for every import the rules above forbid."""
    out = []
    for module, deps in sorted(graph.items()):
        mine = unit_of(module, layers)
        if mine is None:
            continue  # test_every_module_has_a_unit reports it
        rank, side = layers[mine]
        for dep in sorted(deps):
            theirs = unit_of(dep, layers)
            if theirs is None or theirs == mine:
                continue
            dep_rank, dep_side = layers[theirs]
            if dep_rank > rank:
                out.append(f"{module} -> {dep} (up: rank {rank} imports rank {dep_rank})")
            elif dep_rank == rank and (mine, theirs) not in sideways:
                out.append(f"{module} -> {dep} (sideways at rank {rank}: {mine} -> {theirs} is not in SIDEWAYS)")
            elif side != TOOLS and dep_side not in (BOTH, side):
                out.append(f"{module} -> {dep} (the {side} side imports the {dep_side} side)")
    return out


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "pkg"


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """The rule is not vacuous: a function-level ``from pkg.api import x`` in a service is caught,
    a sibling package whose name merely starts with ``api`` is not."""
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/api/__init__.py": "",
            "pkg/api/limits.py": "X = 1\n",
            "pkg/apidoc.py": "",
            "pkg/services/__init__.py": "",
            "pkg/services/a.py": "import pkg.apidoc\n\ndef f():\n    from pkg.api import limits\n    return limits\n",
        },
    )
    layers = {"pkg": (0, BOTH), "pkg.apidoc": (0, BOTH), "pkg.services": (1, SERVER), "pkg.api": (2, SERVER)}
    graph = import_graph(pkg, inside_functions=True)
    assert violations(graph, layers, {}) == ["pkg.services.a -> pkg.api.limits (up: rank 1 imports rank 2)"]


def test_the_check_sees_sideways_and_cross_side_imports(tmp_path: Path) -> None:
    """Same rank, another unit: refused unless allowed with a reason; an agent unit importing a
    server unit of a lower rank is refused too, and the tools may import either side."""
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/db.py": "",
            "pkg/facts.py": "",
            "pkg/edge_a.py": "from pkg import edge_b\n",
            "pkg/edge_b.py": "",
            "pkg/agent.py": "from pkg import facts\n\ndef f():\n    import pkg.db\n",
            "pkg/cli.py": "import pkg.agent, pkg.edge_a, pkg.db\n",
        },
    )
    layers = {
        "pkg": (0, BOTH),
        "pkg.db": (0, SERVER),
        "pkg.facts": (0, BOTH),
        "pkg.agent": (1, AGENT),
        "pkg.edge_a": (1, SERVER),
        "pkg.edge_b": (1, SERVER),
        "pkg.cli": (2, TOOLS),
    }
    graph = import_graph(pkg, inside_functions=True)
    assert violations(graph, layers, {}) == [
        "pkg.agent -> pkg.db (the agent side imports the server side)",
        "pkg.edge_a -> pkg.edge_b (sideways at rank 1: pkg.edge_a -> pkg.edge_b is not in SIDEWAYS)",
    ]
    assert violations(graph, layers, {("pkg.edge_a", "pkg.edge_b"): "why"}) == [
        "pkg.agent -> pkg.db (the agent side imports the server side)"
    ]


def test_every_module_has_a_unit() -> None:
    """A new package or top-level module must be placed in ``LAYERS`` (a rank and a side)."""
    unplaced = sorted(m for m in package_modules(ROOT) if unit_of(m) is None)
    assert unplaced == [], "not in LAYERS: " + ", ".join(unplaced)


def test_every_unit_exists() -> None:
    """Each unit of ``LAYERS`` and ``SIDEWAYS`` is a real module or package (a rename must update this file)."""
    modules = set(package_modules(ROOT))
    named = set(LAYERS) | {u for pair in SIDEWAYS for u in pair}
    assert sorted(named - modules) == []


def test_every_sideways_import_is_used() -> None:
    """An allowed sideways import that is gone must leave ``SIDEWAYS`` (so the list only shrinks)."""
    graph = import_graph(ROOT, inside_functions=True)
    used = {(unit_of(m), unit_of(d)) for m, deps in graph.items() for d in deps}
    assert sorted(pair for pair in SIDEWAYS if pair not in used) == []


def test_no_import_goes_up_a_layer() -> None:
    found = violations(import_graph(ROOT, inside_functions=True))
    assert found == [], "imports against the layers:\n" + "\n".join(found)


#: What the agents may import besides themselves ("Done when" of issue 15: ``system``, their own
#: models and the feed client), and the pure facts and configuration they share with the server.
AGENTS_MAY_IMPORT = (
    "neutrino.system",
    "neutrino.feed.client",
    "neutrino.feed.state",
    "neutrino.feed.resources",
    "neutrino.config",
    "neutrino.shared",
    "neutrino.ip_protocols",
    "neutrino.ipam.addresses",
    "neutrino.timeutil",
    "neutrino.pki",  # issue 16: agents present the node's client certificate and trust the CA (mutual TLS)
)


def test_agents_import_only_system_their_models_and_the_feed_client() -> None:
    """The same rule as the sides above, spelt out for the agents: what any agent module imports outside
    ``neutrino.agents`` is in ``AGENTS_MAY_IMPORT``."""
    graph = import_graph(ROOT, inside_functions=True)
    found = sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        if unit_of(m) == "neutrino.agents"
        for d in deps
        if unit_of(d) != "neutrino.agents" and unit_of(d) not in AGENTS_MAY_IMPORT
    )
    assert found == []
    assert {unit_of(u) for u in AGENTS_MAY_IMPORT} <= {u for u, (_, side) in LAYERS.items() if side in (BOTH, AGENT)}

"""The layering of hub/ and connectors/ (STYLE.md, DESIGN §8, docs/architecture.md).

A module is a node and every import an edge, read with `ast`, so imports inside functions
and under TYPE_CHECKING count too: a function-level import hides a circle from Python, not
from a reader. Two rules: no circle, and no import from a lower layer into a higher one.
There are no exceptions (KNOWN_UPWARD and KNOWN_CIRCLES are empty and stay so).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Lowest first. A module belongs to the layer of its longest matching prefix; a module
#: may import its own layer and any below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The kernel every layer may use; connectors/base.py is the plugin contract.
    (
        "kernel",
        (
            "hub",
            "hub.errors",
            "hub.clock",
            "hub.events",
            "hub.logging",
            "hub.secrets",
            "hub.yamldoc",
            "hub.validation",
            "connectors.base",
        ),
    ),
    # What plugins implement and how they are found.
    ("contracts", ("hub.sources.base", "hub.plugins")),
    # switchboard.yaml, parsed; auth's settings, roles and proxies are config sections.
    ("config", ("hub.config", "hub.auth.settings", "hub.auth.roles", "hub.auth.proxies")),
    ("store", ("hub.store",)),
    # What a webhook is and what happens to it: providers, rules, people, destinations.
    (
        "domain",
        (
            "hub.sources",
            "hub.rules",
            "hub.notion",
            "hub.google",
            "hub.team",
            "hub.tasks",
            "connectors",
        ),
    ),
    ("pipeline", ("hub.pipeline", "hub.schedule")),
    # The composition root's product: built from the layers below, handed to those above.
    ("runtime", ("hub.runtime",)),
    ("surface-shared", ("hub.ingress", "hub.observe", "hub.auth")),
    ("api", ("hub.api",)),
    # The dashboard mounts the API and shows its views.
    ("admin", ("hub.admin",)),
    ("composition", ("hub.app", "hub.cli", "hub.__main__", "hub.tasks.cli")),
)

#: Upward edges allowed (importer, imported). Empty, and it must stay empty: an upward
#: edge is fixed by moving the code to its layer (or passing in what it needs), not by
#: listing it here. The mechanism stays for reading a failure, not for growing a list.
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()

#: Edges allowed inside a circle (importer, imported). Empty, and it must stay empty too.
KNOWN_CIRCLES: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ("hub", "connectors"):
        for path in (REPO / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        # `from hub.store import queries` imports the module hub.store.queries.
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = {
            target
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            for imported in _imported(node, package)
            if (target := _resolve(imported, modules)) is not None
        }
        graph[name] = targets - {name}
    return graph


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circle() -> None:
    graph = {
        name: {t for t in targets if (name, t) not in KNOWN_CIRCLES}
        for name, targets in import_graph().items()
    }
    assert _circles(graph) == []


def test_no_import_points_up_a_layer() -> None:
    upward = sorted(
        f"{name} ({LAYERS[layer_of(name)][0]}) -> {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(name) and (name, target) not in KNOWN_UPWARD
    )
    assert upward == []


def test_connectors_import_nothing_from_hub() -> None:
    """Connectors are plugins: connectors/base.py and third-party libraries only."""
    from_hub = sorted(
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        if name.startswith("connectors")
        for target in targets
        if target.startswith("hub")
    )
    assert from_hub == []


def test_the_checker_sees_function_level_and_type_checking_imports() -> None:
    """The graph is only worth something if hidden imports count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from hub.runtime import Runtime\n"
        "def f():\n    from . import errors\n"
    )
    found = {i for node in ast.walk(ast.parse(source)) for i in _imported(node, "hub.admin")}
    assert {"hub.runtime.Runtime", "hub.admin.errors"} <= found
    assert layer_of("hub.admin.pages") > layer_of("hub.api.views") > layer_of("hub.runtime")
    assert layer_of("hub.auth.settings") < layer_of("hub.store") < layer_of("hub.auth.audit")


def test_no_edge_is_excused() -> None:
    """The exception lists are for reading a failure, not for parking an edge."""
    assert not KNOWN_UPWARD
    assert not KNOWN_CIRCLES

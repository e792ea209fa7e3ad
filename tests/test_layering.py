"""Lower layers never import higher ones, and no two folders import each other.

The graph is read from the source with ``ast`` (every import, also those inside functions), one node
per folder of ``rtdp_dagster`` (or top-level module) and per module of ``bench``. Layers, lowest first:

0. ``envelope`` (the wire format and point rules) and leaf helpers that import nothing of the platform;
1. ``config``: the section models, importing only the envelope's value models;
2. clients of the infrastructure: ``spark`` sessions, ``tsdb`` HTTP, the local ``stack``;
3. what the domains share: ``master_data``, the Dagster ``resources``, ``dagster_common``;
4. the paths data takes in: ``collection`` (sources → Kafka), ``streaming`` (Kafka → bronze, realtime TSDB);
5. ``batch`` (bronze → silver → rollups);
6. what works on the tables: ``quality``, ``serving``, ``maintenance``, ``replay``, ``grafana``;
7. the code location ``definitions`` and the ``config_reference`` generator;
8. the entry points: ``cli``, ``demo``, ``smoke`` (its own code location on top of the production one);
9. ``bench``: shared helpers, then scenarios, then its entry point.

A new folder must be placed here: an unknown node fails the test, so its layer is a decision in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rtdp_dagster", "bench")

LAYERS: list[set[str]] = [
    {
        "rtdp_dagster",  # its empty __init__
        "rtdp_dagster.envelope",
        "rtdp_dagster.heartbeat",
        "rtdp_dagster.json_file",
        "rtdp_dagster.logs",
        "rtdp_dagster.table_storage",
        "rtdp_dagster.text_table",
        "rtdp_dagster.wall_clock",
    },
    {"rtdp_dagster.config"},
    {"rtdp_dagster.spark", "rtdp_dagster.tsdb", "rtdp_dagster.stack"},
    {"rtdp_dagster.master_data", "rtdp_dagster.resources", "rtdp_dagster.dagster_common"},
    {"rtdp_dagster.collection", "rtdp_dagster.streaming"},
    {"rtdp_dagster.batch"},
    {
        "rtdp_dagster.quality",
        "rtdp_dagster.serving",
        "rtdp_dagster.maintenance",
        "rtdp_dagster.replay",
        "rtdp_dagster.grafana",
    },
    {"rtdp_dagster.definitions", "rtdp_dagster.config_reference"},
    {"rtdp_dagster.cli", "rtdp_dagster.demo", "rtdp_dagster.smoke"},
    {"bench", "bench.results", "bench.load_producer", "bench.stream_stack", "bench.drills", "bench.router_process"},
    {"bench.backfill_drills"},  # drills during a Dagster backfill, built on bench.drills
    {
        "bench.scenarios",
        "bench.scenarios.batch",
        "bench.scenarios.collect",
        "bench.scenarios.collection",
        "bench.scenarios.dashboards",
        "bench.scenarios.driver_start",
        "bench.scenarios.drills",
        "bench.scenarios.query",
        "bench.scenarios.stream",
        "bench.scenarios.sustained",
    },
    {"bench.__main__"},
]
LAYER_OF = {node: level for level, nodes in enumerate(LAYERS) for node in nodes}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def node_of(module: str) -> str:
    """The graph node a module belongs to: its folder under rtdp_dagster, or its bench module."""
    parts = module.split(".")
    if parts[0] == "bench" and len(parts) > 2 and parts[1] == "scenarios":
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every platform module the tree imports (``from a import b`` counts as ``a.b``: b may be a module)."""
    found: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            found.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - item.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in item.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, dict[str, set[str]]]:
    """node -> imported node -> the module-level edges that make it (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            source = node_of(module)
            graph[source]  # every node appears, also one that imports nothing
            for target in _imported(ast.parse(path.read_text()), module, path.name == "__init__.py"):
                # `from rtdp_dagster import definitions` names the module, not the package.
                target_node = node_of(target) if "." in target else target
                if target_node != source and target_node not in PACKAGES:
                    graph[source][target_node].add(f"{module} -> {target}")
    return graph


def _cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
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


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, set[str]]]:
    return import_graph()


def test_every_folder_has_a_layer(graph: dict[str, dict[str, set[str]]]) -> None:
    nodes = set(graph) | {target for targets in graph.values() for target in targets}
    assert sorted(nodes - set(LAYER_OF)) == [], "place the new folder in LAYERS (tests/test_layering.py)"


def test_no_folder_cycle(graph: dict[str, dict[str, set[str]]]) -> None:
    assert _cycles(graph) == []


def test_no_lower_layer_imports_a_higher_one(graph: dict[str, dict[str, set[str]]]) -> None:
    upward = sorted(
        edge
        for source, targets in graph.items()
        for target, edges in targets.items()
        if LAYER_OF.get(target, -1) > LAYER_OF.get(source, len(LAYERS))
        for edge in edges
    )
    assert upward == []


def test_config_imports_no_domain(graph: dict[str, dict[str, set[str]]]) -> None:
    assert set(graph["rtdp_dagster.config"]) <= {"rtdp_dagster.envelope"}


def test_the_graph_sees_a_cycle() -> None:
    """The checks above are only as good as the graph: a known cycle must be found."""
    assert _cycles({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}}) == [["a", "b", "c"]]

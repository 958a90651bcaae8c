"""The lab's layout: simulators grouped in subpackages (kube/, rethinkdb/, hostapp/) and no import
cycle between its modules, not even one hidden in a function or behind ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

from mgn_verify import lab

LAB = Path(lab.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAB).with_suffix("").parts
    return ".".join(["mgn_verify.lab", *(part for part in parts if part != "__init__")])


def _imports() -> dict[str, set[str]]:
    """Module -> lab modules it imports anywhere in its body (top level, functions, TYPE_CHECKING)."""
    modules = {_module_name(path): path for path in LAB.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        # A package's __init__ re-exporting its own submodules is not a cycle.
        graph[name] = {t for t in targets if t in modules and t != name and not t.startswith(f"{name}.")}
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for target in graph.get(node, ()):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_no_import_cycles_inside_the_lab() -> None:
    graph = _imports()
    cycles = [cycle for name in sorted(graph) if (cycle := _cycle_from(name, graph))]
    assert cycles == []


def test_simulators_are_grouped_in_subpackages() -> None:
    flat = sorted(p.name for p in LAB.glob("*.py") if p.name.startswith(("kube", "rethinkdb", "hostapp")))
    assert flat == []
    for package, parts in {"kube": ("store", "select", "seed", "watch", "errors", "simulator"),
                           "rethinkdb": ("wire", "reql", "topology", "simulator"),
                           "hostapp": ("model", "cluster", "simulator")}.items():
        assert all((LAB / package / f"{part}.py").is_file() for part in parts), package
    from mgn_verify.lab.hostapp import HostAppSimulator
    from mgn_verify.lab.kube import KubeApiError, KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator

    assert {HostAppSimulator.__module__, KubeSimulator.__module__, RethinkDBSimulator.__module__} == {
        "mgn_verify.lab.hostapp.simulator", "mgn_verify.lab.kube.simulator", "mgn_verify.lab.rethinkdb.simulator"}
    assert KubeApiError.__module__ == "mgn_verify.lab.kube.errors"

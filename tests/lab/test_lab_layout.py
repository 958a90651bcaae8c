"""The lab's layout: simulators grouped in subpackages (kube/, rethinkdb/, hostapp/) and no import
cycle between its modules, not even one hidden in a function or behind ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

from mgn_verify import lab

LAB = Path(lab.__file__).parent


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join([package, *(part for part in parts if part != "__init__")])


def _imports(root: Path = LAB, package: str = "mgn_verify.lab") -> dict[str, set[str]]:
    """Module -> modules of ``package`` (found under ``root``) it imports anywhere in its body
    (top level, functions, TYPE_CHECKING), relative imports (``from .x import y``) included."""
    modules = {_module_name(path, root, package): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]  # the package it is in
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(node, here)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        # A package's __init__ re-exporting its own submodules is not a cycle.
        graph[name] = {t for t in targets if t in modules and t != name and not t.startswith(f"{name}.")}
    return graph


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The absolute module an ``import from`` names: ``from ..x import y`` in ``a.b.c`` is ``a.x``."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[:len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


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


def test_relative_import_cycles_are_found_too(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    (package / "sub" / "c.py").write_text("from . import b\nfrom .. import a\n")
    graph = _imports(package, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.sub.c"] == {"pkg.sub.b", "pkg.a"}
    assert _cycle_from("pkg.a", graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]


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

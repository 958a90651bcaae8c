"""The dependency graph: resolving ``requires``, finding cycles, ordering, selecting.

Order is deterministic: a topological order in which, among checks that are ready at the same
time, the layer order (system, network, kubernetes, tailscale, rethinkdb, guildnet, others)
and then the id decide. Reports use this order whatever order checks finished in.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._exceptions import DependencyCycleError, UnknownDependencyError
from ._match import IdMatcher
from ._model import CheckSpec, layer_sort_key

__all__ = ["Graph", "build_graph"]

def _sort_key(spec: CheckSpec) -> tuple[tuple[int, str], str]:
    return (layer_sort_key(spec.layer), spec.id)


@dataclass(frozen=True, slots=True)
class Graph:
    """``requires[id]`` are the resolved ids a check waits for; ``order`` is the report order."""

    specs: Mapping[str, CheckSpec]
    requires: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]

    def dependents(self) -> dict[str, list[str]]:
        """The checks waiting for each check, in report order."""
        return _dependents(self.requires, self.order)

    def closure(self, ids: Iterable[str]) -> set[str]:
        """``ids`` plus everything they require, transitively."""
        seen: set[str] = set()
        stack = list(ids)
        while stack:
            cid = stack.pop()
            if cid not in seen:
                seen.add(cid)
                stack.extend(self.requires[cid])
        return seen


def _dependents(requires: Mapping[str, tuple[str, ...]], order: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {cid: [] for cid in requires}
    for cid in order:
        for dep in requires[cid]:
            out[dep].append(cid)
    return out


def _resolve(specs: Mapping[str, CheckSpec]) -> dict[str, tuple[str, ...]]:
    matcher = IdMatcher(specs.values())
    by_base: dict[str, list[str]] = {}
    for spec in specs.values():
        by_base.setdefault(spec.base_id, []).append(spec.id)
    requires: dict[str, tuple[str, ...]] = {}
    for spec in specs.values():
        deps: list[str] = []
        for requirement in spec.requires:
            if matcher.is_exact(requirement):  # fast path through the id and base-id maps
                found = [requirement] if requirement in specs else by_base.get(requirement, [])
            else:
                found = [other.id for other in matcher.select(requirement)]
            others = [cid for cid in found if specs[cid].base_id != spec.base_id]
            if found and not others:
                raise DependencyCycleError([spec.id, spec.id])
            if not others:
                raise UnknownDependencyError(spec.id, requirement, matcher.suggest(requirement))
            deps.extend(cid for cid in others if cid not in deps)
        requires[spec.id] = tuple(deps)
    return requires


def _find_cycle(requires: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """An actual cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(requires):
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            deps = requires[node]
            if index < len(deps):
                stack.append((node, index + 1))
                dep = deps[index]
                if state.get(dep) == 1:
                    return [*path[path.index(dep):], dep]
                if dep not in state:
                    stack.append((dep, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def build_graph(specs: Mapping[str, CheckSpec]) -> Graph:
    """Resolve requirements, reject unknown ones and cycles, and compute the report order."""
    requires = _resolve(specs)
    cycle = _find_cycle(requires)
    if cycle is not None:
        raise DependencyCycleError(cycle)
    waiting = {cid: len(deps) for cid, deps in requires.items()}
    dependents = _dependents(requires, requires)
    heap = [(_sort_key(specs[cid]), cid) for cid, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, cid = heapq.heappop(heap)
        order.append(cid)
        for child in dependents[cid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(heap, (_sort_key(specs[child]), child))
    return Graph(specs, requires, tuple(order))

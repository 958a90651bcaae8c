"""Where each check goes in the dependency picture: a layered (Sugiyama-style) DAG layout.

Ranks are longest paths from the checks that require nothing (rank 0, drawn on the left), so an
edge always points from a dependent to a check in a lower rank. Within a rank the order comes
from barycenter sweeps (each check moves towards the mean height of its neighbours), keeping the
order with the fewest edge crossings. A rank with more checks than ``max_rows`` wraps into
several sub-columns, interleaved (check i goes to sub-column i % k) so heights stay monotone in
the order: the built-in catalogue (~100 checks, 40 in one rank) stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._model import layer_sort_key

__all__ = ["GraphNode", "Layout", "Placed", "count_crossings", "layout", "ranks"]

#: Sweeps tried at most; the order with the fewest crossings seen wins.
_SWEEPS = 12
#: Stop after this many sweeps that found nothing better.
_PATIENCE = 3
#: Edge pairs compared (crossing counts are quadratic) before a big graph gets plain sweeps.
_BUDGET = 1_500_000


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One check as the picture shows it (texts already redacted). ``status`` is a report status
    or ``"not-run"``; ``root`` marks a root cause (a failure, or anything that blocked others)."""

    id: str
    layer: str
    status: str
    title: str = ""
    message: str = ""
    root: bool = False


@dataclass(frozen=True, slots=True)
class Placed:
    """A node's place: its rank, its sub-column within the rank and its height in row units."""

    node: GraphNode
    rank: int
    column: int       # overall column index (ranks' sub-columns, left to right)
    y: float          # in rows (one row = one node pitch)


@dataclass(frozen=True, slots=True)
class Layout:
    placed: dict[str, Placed]
    requires: dict[str, tuple[str, ...]]   # only edges between nodes of the picture
    columns: int
    rows: float                            # height in rows
    crossings: int                         # -1: too big to count


def ranks(ids: Sequence[str], requires: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest-path rank of every id (0: requires nothing in ``ids``). An edge that would close
    a cycle (impossible for a loaded graph, but a report is just data) is ignored."""
    rank: dict[str, int] = {}
    visiting: set[str] = set()
    for root in ids:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            cid, expanded = stack.pop()
            if cid in rank:
                continue
            deps = [d for d in requires.get(cid, ()) if d in requires and d != cid]
            if expanded:
                visiting.discard(cid)
                rank[cid] = 1 + max((rank[d] for d in deps if d in rank), default=-1)
                continue
            visiting.add(cid)
            stack.append((cid, True))
            stack.extend((d, False) for d in deps if d not in rank and d not in visiting)
    return rank


def layout(nodes: Sequence[GraphNode], requires: Mapping[str, Sequence[str]], *, max_rows: int = 24,
           sweeps: int = _SWEEPS) -> Layout:
    """Place ``nodes``; ``requires[id]`` are the ids a check waits for (others are ignored).
    ``sweeps=0`` keeps the initial order (layer, then report order): what the sweeps improve on."""
    by_id = {n.id: n for n in nodes}
    edges = {n.id: tuple(dict.fromkeys(d for d in requires.get(n.id, ()) if d in by_id and d != n.id))
             for n in nodes}
    rank = ranks(list(by_id), edges)
    edges = {cid: tuple(d for d in deps if rank[d] < rank[cid]) for cid, deps in edges.items()}
    index = {n.id: i for i, n in enumerate(nodes)}
    levels: list[list[str]] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for node in sorted(nodes, key=lambda n: (layer_sort_key(n.layer), index[n.id])):
        levels[rank[node.id]].append(node.id)
    wraps = [max(1, math.ceil(len(level) / max(1, max_rows))) for level in levels]
    levels, crossings = _order(levels, wraps, edges, sweeps)
    return _place(levels, wraps, edges, by_id, rank, crossings)


def _heights(levels: list[list[str]], wraps: list[int]) -> dict[str, float]:
    """Row height of each node for an order: interleaved wrapping, each rank centred."""
    tallest = max((len(level) / k for level, k in zip(levels, wraps, strict=True)), default=0.0)
    out: dict[str, float] = {}
    for level, k in zip(levels, wraps, strict=True):
        top = (tallest - len(level) / k) / 2
        for i, cid in enumerate(level):
            out[cid] = top + i / k
    return out


def _order(levels: list[list[str]], wraps: list[int], edges: Mapping[str, tuple[str, ...]],
           sweeps: int) -> tuple[list[list[str]], int]:
    dependents: dict[str, list[str]] = {cid: [] for cid in edges}
    for cid, deps in edges.items():
        for dep in deps:
            dependents[dep].append(cid)
    rank = {cid: r for r, level in enumerate(levels) for cid in level}
    pairs = max(1, sum(map(len, edges.values())) ** 2 // 2)
    affordable = (_BUDGET // pairs - 1) // max(1, len(levels))
    if affordable < min(sweeps, 2):  # too big to count: barycenters only, crossings unknown (-1)
        return _plain_sweeps(levels, wraps, edges, dependents, sweeps), -1
    sweeps = min(sweeps, affordable)
    best = [list(level) for level in levels]
    best_count = count_crossings(_heights(best, wraps), rank, edges)
    current, stale = best, 0
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        neighbours = edges if downward else dependents
        current, count = [list(level) for level in current], best_count
        for r in (range(1, len(current)) if downward else range(len(current) - 2, -1, -1)):
            moved = [*current[:r], _by_barycenter(current[r], neighbours, _heights(current, wraps)), *current[r + 1:]]
            # Barycenters alone can make things worse (nodes without neighbours, long edges):
            # a rank's new order is kept only when it crosses no more than before.
            moved_count = count_crossings(_heights(moved, wraps), rank, edges)
            if moved_count <= count:
                current, count = moved, moved_count
        if count < best_count:
            best, best_count, stale = current, count, 0
        else:
            stale += 1
            if stale >= _PATIENCE:
                break
    return best, best_count


def _plain_sweeps(levels: list[list[str]], wraps: list[int], edges: Mapping[str, Sequence[str]],
                  dependents: Mapping[str, Sequence[str]], sweeps: int) -> list[list[str]]:
    current = [list(level) for level in levels]
    rounds = min(sweeps, 5)
    for sweep in range(rounds - (rounds % 2 == 0 and rounds > 0)):  # odd: the last one goes downward
        downward = sweep % 2 == 0
        for r in (range(1, len(current)) if downward else range(len(current) - 2, -1, -1)):
            current[r] = _by_barycenter(current[r], edges if downward else dependents, _heights(current, wraps))
    return current


def _by_barycenter(level: list[str], neighbours: Mapping[str, Sequence[str]], y: Mapping[str, float]) -> list[str]:
    """Sorted by the mean height of each node's neighbours (a node without any keeps its own)."""
    def key(item: tuple[int, str]) -> tuple[float, int]:
        position, cid = item
        around = [y[n] for n in neighbours[cid]]
        return (sum(around) / len(around) if around else y[cid], position)

    return [cid for _, cid in sorted(enumerate(level), key=key)]


def count_crossings(y: Mapping[str, float], rank: Mapping[str, int], edges: Mapping[str, Sequence[str]]) -> int:
    """Pairs of edges that cross, each edge seen as a straight line from rank to rank (edges
    sharing an end do not count)."""
    lines = [(rank[dep], y[dep], rank[cid], y[cid], cid, dep) for cid, deps in edges.items() for dep in deps]
    total = 0
    for i, (r0, y0, r1, y1, a, b) in enumerate(lines):
        for s0, z0, s1, z1, c, d in lines[i + 1:]:
            lo, hi = max(r0, s0), min(r1, s1)
            if lo >= hi or {a, b} & {c, d}:
                continue
            first = _at(r0, y0, r1, y1, lo) - _at(s0, z0, s1, z1, lo)
            last = _at(r0, y0, r1, y1, hi) - _at(s0, z0, s1, z1, hi)
            total += first * last < 0
    return total


def _at(r0: int, y0: float, r1: int, y1: float, r: int) -> float:
    return y0 + (y1 - y0) * (r - r0) / (r1 - r0)


def _place(levels: list[list[str]], wraps: list[int], edges: dict[str, tuple[str, ...]],
           by_id: Mapping[str, GraphNode], rank: Mapping[str, int], crossings: int) -> Layout:
    heights = _heights(levels, wraps)
    placed: dict[str, Placed] = {}
    first_column = 0
    for r, (level, k) in enumerate(zip(levels, wraps, strict=True)):
        for i, cid in enumerate(level):
            placed[cid] = Placed(by_id[cid], r, first_column + i % k, heights[cid])
        first_column += k
    rows = max((p.y + 1 for p in placed.values()), default=0.0)
    assert all(rank[cid] == p.rank for cid, p in placed.items())
    return Layout(placed, edges, first_column, rows, crossings)

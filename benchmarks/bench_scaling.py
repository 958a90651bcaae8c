"""Benchmark 6, scaling: the same depth-10 DAG of no-op checks at 100, 1,000 and 10,000 checks.

Per size: graph build (``build_graph``: resolve requires, cycle search, topological order),
selection, the run phase (schedule + execute no-ops) and load (import + collection), each in
µs per check. Linear growth means a flat per-check cost; the criterion used here is
``per-check cost at 10,000 / per-check cost at 1,000 ≤ 1.5`` for graph + select + run.
"""

from __future__ import annotations

import statistics

from _common import Context, Row, run_worker
from _gen import layered_dag, write_checks

NAME = "scaling"
PHASES = ("graph_s", "select_s", "run_s", "load_s")


def run(ctx: Context) -> list[Row]:
    sizes = [100, 1000, 10_000] if not ctx.quick else [50, 200, 800]
    rows: list[Row] = []
    per_check: dict[int, list[float]] = {}
    for size in sizes:
        checks = write_checks(ctx.tmp / f"scaling-{size}", layered_dag(size, 10))
        run_worker(checks)  # warm: byte-compile the generated files
        phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
        per_check[size] = []
        for _ in range(ctx.reps):
            measured = run_worker(checks)
            for phase in PHASES:
                phases[phase].append(measured[phase] / size * 1e6)
            framework = measured["graph_s"] + measured["select_s"] + measured["run_s"]
            per_check[size].append(framework / size * 1e6)
        for phase in PHASES:
            rows.append(Row(NAME, f"DAG depth 10, N={size}", phase.removesuffix("_s") + " per check", "µs",
                            phases[phase]))
        rows.append(Row(NAME, f"DAG depth 10, N={size}", "graph+select+run per check", "µs", per_check[size]))
    mid, big = sizes[1], sizes[2]
    growth = [b / statistics.median(per_check[mid]) for b in per_check[big]]
    rows.append(Row(NAME, f"N={big} vs N={mid}", "per-check cost growth", "x", growth, 1.5,
                    extra={"note": "1.0 = perfectly linear total cost"}))
    return rows

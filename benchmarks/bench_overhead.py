"""Benchmark 2, per-check framework overhead: 10,000 no-op checks, flat, chained and fanned out.

The checks do nothing (``def check_x(): pass``), so the run phase (``Session.run``: scheduler,
worker pool hand-off, timeout wrapper, result, hooks) *is* the framework cost. Reported per
check: run-phase µs (target ≤ 50), load µs (import of the generated files + collection +
graph build, informational), and the worker process's peak RSS (target ≤ 150 MB). A minimal
asyncio + thread-pool scheduler over the same functions is the reference for what the bare
thread hand-off costs on this machine.
"""

from __future__ import annotations

from _common import Context, Row, run_worker
from _gen import Node, chain, fanout, flat, write_checks

NAME = "overhead"


def run(ctx: Context) -> list[Row]:
    n = ctx.size(10_000, 300)
    cases: list[tuple[str, list[Node], bool]] = [
        ("flat sync no-op", flat(n), True), ("flat async no-op", flat(n, ("anoop",)), False),
        ("chain sync no-op", chain(n), True), ("fan-out sync no-op", fanout(n), False),
    ]
    rows: list[Row] = []
    for index, (label, nodes, with_baseline) in enumerate(cases):
        checks = write_checks(ctx.tmp / f"overhead-{index}", nodes)
        run_us: list[float] = []
        load_us: list[float] = []
        graph_us: list[float] = []
        rss: list[float] = []
        base_us: list[float] = []
        run_worker(checks, concurrency=32)  # warm: byte-compile the generated files once
        for _ in range(ctx.reps):
            measured = run_worker(checks, concurrency=32)
            assert measured["statuses"] == {"pass": n}, measured["statuses"]
            run_us.append(measured["run_s"] / n * 1e6)
            load_us.append(measured["load_s"] / n * 1e6)
            graph_us.append(measured["graph_s"] / n * 1e6)
            rss.append(measured["maxrss_mb"])
            if with_baseline:
                base_us.append(run_worker(checks, concurrency=32, baseline=True)["run_s"] / n * 1e6)
        case = f"{label} N={n}"
        rows.append(Row(NAME, case, "run phase per check", "µs", run_us, 50.0,
                        extra={"note": "Session.run wall / N (C=32)"}))
        rows.append(Row(NAME, case, "load per check", "µs", load_us,
                        extra={"note": "Session.load / N: file import, collection, graph"}))
        rows.append(Row(NAME, case, "graph build per check", "µs", graph_us))
        rows.append(Row(NAME, case, "peak RSS", "MB", rss, 150.0))
        if base_us:
            rows.append(Row(NAME, case, "baseline run per check", "µs", base_us,
                            extra={"note": "minimal asyncio scheduler, same checks (reference)"}))
        if ctx.profile_dir is not None and index in (0, 2):
            run_worker(checks, concurrency=32, profile=ctx.profile_dir / f"profile_overhead_{index}.txt")
    return rows

"""Benchmark 1, scheduler efficiency: a DAG of real ~20 ms socket round trips.

1,000 checks in a dependency DAG of depth 10, each doing one ``PING 20`` round trip against
the delay server, at concurrency 8, 32 (the default), 128 and with a sync/async mix. The bound
compared against is the best any scheduler could do with ``C`` slots::

    bound = max(depth x t_io, N x t_io / C)

(critical path, or total work spread over C slots), where ``t_io`` is the *measured* median
duration of one round trip done sequentially (≥ 20 ms). The same checks are also run by a
minimal hand-written asyncio scheduler (``_worker.py --baseline``) to show what this machine
can achieve at all: a miss that the baseline shares is the machine, not mgn.
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any

from _common import Context, Row, run_worker
from _gen import critical_path_len, layered_dag, write_checks

NAME = "scheduler"
DELAY_MS = 20


def calibrate(port: int, samples: int) -> float:
    """Median seconds of one sequential ``PING 20`` round trip (connect included)."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"PING %d\n" % DELAY_MS)
            assert sock.recv(16) == b"PONG\n"
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(ctx: Context) -> list[Row]:
    n, depth = ctx.size(1000, 100), ctx.size(10, 5)
    t_io = calibrate(ctx.port, ctx.size(30, 5))
    cases: list[tuple[str, tuple[str, ...], int]] = [
        ("sync C=8", ("ping",), 8), ("sync C=32", ("ping",), 32), ("sync C=128", ("ping",), 128),
        ("mixed sync/async C=32", ("ping", "aping"), 32),
    ]
    rows: list[Row] = []
    for label, kinds, concurrency in cases:
        nodes = layered_dag(n, depth, kinds)
        checks = write_checks(ctx.tmp / f"sched-{len(rows)}", nodes, port=ctx.port, ms=DELAY_MS)
        cp = critical_path_len(nodes)
        bound = max(cp * t_io, n * t_io / concurrency)
        mgn: list[float] = []
        base: list[float] = []
        statuses: dict[str, Any] = {}
        for _ in range(ctx.reps):
            measured = run_worker(checks, concurrency=concurrency, timeout=30)
            statuses = measured["statuses"]
            mgn.append(measured["run_s"])
            base.append(run_worker(checks, concurrency=concurrency, baseline=True)["run_s"])
        extra = {"n": n, "depth": cp, "concurrency": concurrency, "t_io_s": round(t_io, 5),
                 "bound_s": round(bound, 4), "wall_s_median": round(statistics.median(mgn), 4),
                 "baseline_wall_s_median": round(statistics.median(base), 4), "statuses": statuses,
                 "note": f"{n} checks, depth {cp}; bound {bound:.3f}s; wall {statistics.median(mgn):.3f}s"}
        case = f"{label} N={n}"
        rows.append(Row(NAME, case, "mgn wall / bound", "x", [m / bound for m in mgn], 1.10, extra=extra))
        rows.append(Row(NAME, case, "baseline wall / bound", "x", [b / bound for b in base],
                        extra={"note": "minimal asyncio scheduler, same checks (reference, no target)"}))
    return rows

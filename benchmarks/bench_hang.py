"""Benchmark 3, hang tolerance: 200 checks of which 10 % never get an answer, timeout 1 s.

The silent checks connect to the delay server, which accepts and never replies (half are sync
checks blocked in ``recv``, half async). The other 90 % do a 20 ms round trip. The checks form
a DAG of depth 4 (the dependents of a hung check end ``blocked``). Target::

    wall ≤ 1.10 x timeout + depth x t_io

i.e. the run ends one timeout (plus 10 %) after the critical path of the answering checks, and a
hung thread never holds the run open.
"""

from __future__ import annotations

from _common import Context, Row, run_worker
from _gen import critical_path_len, layered_dag, write_checks
from bench_scheduler import calibrate

NAME = "hang"
TIMEOUT = 1.0


def run(ctx: Context) -> list[Row]:
    n = ctx.size(200, 40)
    kinds = ("ping",) * 4 + ("silent",) + ("ping",) * 4 + ("asilent",)  # 10 % silent
    nodes = layered_dag(n, 4, kinds)
    checks = write_checks(ctx.tmp / "hang", nodes, port=ctx.port)
    t_io = calibrate(ctx.port, 5)
    cp = critical_path_len(nodes)
    limit = 1.10 * TIMEOUT + cp * t_io
    walls: list[float] = []
    statuses: dict[str, int] = {}
    threads = 0
    for _ in range(ctx.reps):
        measured = run_worker(checks, concurrency=32, timeout=TIMEOUT, limit=120)
        walls.append(measured["run_s"])
        statuses, threads = measured["statuses"], measured["threads_after"]
    extra = {"n": n, "silent": sum(1 for node in nodes if "silent" in node.kind), "timeout_s": TIMEOUT,
             "depth": cp, "t_io_s": round(t_io, 5), "statuses": statuses, "threads_after": threads,
             "note": f"limit = 1.1 x {TIMEOUT:g}s + {cp} x {t_io * 1000:.1f}ms; statuses {statuses}"}
    return [Row(NAME, f"{n} checks, 10% silent, timeout {TIMEOUT:g}s", "wall", "s", walls,
                round(limit, 3), extra=extra),
            Row(NAME, f"{n} checks, 10% silent, timeout {TIMEOUT:g}s", "wall / timeout", "x",
                [w / TIMEOUT for w in walls])]

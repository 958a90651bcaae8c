"""One in-process mgn run, in a fresh interpreter, timed phase by phase; prints JSON on stdout.

Drives ``mgn_verify._session.Session`` exactly as ``mgn verify`` does (load → select → run)
with only the generated checks loaded (no config file, no autoload, built-in layers blocked),
so the numbers are the framework's own cost plus whatever the checks do.

    python _worker.py --checks-dir DIR [--concurrency N] [--timeout S] [--profile OUT.txt]
    python _worker.py --checks-dir DIR --baseline [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
from collections import Counter
from time import perf_counter
from typing import Any

ENV = {"MGN_CONFIG": os.devnull, "MGN_DISABLE_PLUGIN_AUTOLOAD": "1"}
BLOCK_BUILTINS = [f"no:{layer}" for layer in ("system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet")]


def measure(checks_dir: str, concurrency: int, timeout: float) -> dict[str, Any]:
    t0 = perf_counter()
    from mgn_verify._graph import build_graph
    from mgn_verify._report import RunOptions
    from mgn_verify._session import Selection, Session

    t_import = perf_counter() - t0
    session = Session(ENV, lambda message: None)
    t1 = perf_counter()
    loaded = session.load(plugins=BLOCK_BUILTINS, checks_dirs=[checks_dir], config_path=os.devnull,
                          settings={"verify.concurrency": (concurrency, False), "verify.timeout": (timeout, False)})
    t_load = perf_counter() - t1
    t2 = perf_counter()
    build_graph(loaded.plugins.registry.checks)  # pure: the graph-build share of load
    t_graph = perf_counter() - t2
    t3 = perf_counter()
    ids, preset = loaded.select(Selection())
    t_select = perf_counter() - t3
    options = RunOptions(concurrency=loaded.config["verify.concurrency"],
                         default_timeout=loaded.config["verify.timeout"])
    t4 = perf_counter()
    report = loaded.run(ids, preset, options, ignore=[], argv=[])
    t_run = perf_counter() - t4
    t5 = perf_counter()
    json.dumps(report.to_dict())
    t_report = perf_counter() - t5
    return {
        "n": len(ids), "import_s": t_import, "load_s": t_load, "graph_s": t_graph, "select_s": t_select,
        "run_s": t_run, "report_s": t_report,
        "statuses": dict(Counter(str(r.status) for r in report.results)),
        "max_check_s": max((r.duration_s for r in report.results), default=0.0),
        "threads_after": threading.active_count(),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "python": sys.version.split()[0],
    }


def baseline(checks_dir: str, concurrency: int) -> dict[str, Any]:
    """The same check functions run by a minimal hand-written asyncio scheduler (one task per
    check awaiting its requirements, a semaphore of ``concurrency``, sync checks on a
    ``ThreadPoolExecutor``; no timeouts, results or hooks): what this machine can do."""
    import asyncio
    import importlib.util
    import inspect
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from mgn_verify._marks import get_marks

    funcs: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for path in sorted(Path(checks_dir).glob("check_*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_baseline_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for obj in vars(module).values():
            marks = get_marks(obj, "check")
            if marks:
                funcs[marks[-1].kwargs["id"]] = (obj, marks[-1].kwargs["requires"])

    async def run_all() -> int:
        loop = asyncio.get_running_loop()
        semaphore = asyncio.Semaphore(concurrency)
        tasks: dict[str, asyncio.Task[None]] = {}
        ok = 0

        async def one(func: Any, deps: list[asyncio.Task[None]]) -> None:
            nonlocal ok
            if deps:
                await asyncio.gather(*deps)
            async with semaphore:
                if inspect.iscoroutinefunction(func):
                    await func()
                else:
                    await loop.run_in_executor(executor, func)
                ok += 1

        for cid, (func, requires) in funcs.items():  # files list checks in dependency order
            tasks[cid] = asyncio.ensure_future(one(func, [tasks[r] for r in requires]))
        await asyncio.gather(*tasks.values())
        return ok

    executor = ThreadPoolExecutor(concurrency)
    t0 = perf_counter()
    ok = asyncio.run(run_all())
    run_s = perf_counter() - t0
    executor.shutdown(wait=False)
    return {"n": len(funcs), "run_s": run_s, "statuses": {"pass": ok},
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks-dir", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--profile", metavar="PATH", help="write a pyinstrument text profile here")
    parser.add_argument("--baseline", action="store_true", help="run the minimal reference scheduler")
    args = parser.parse_args()
    if args.baseline:
        out = baseline(args.checks_dir, args.concurrency)
    elif args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        out = measure(args.checks_dir, args.concurrency, args.timeout)
        profiler.stop()
        with open(args.profile, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        out = measure(args.checks_dir, args.concurrency, args.timeout)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)  # do not wait for abandoned (hung) daemon threads' sockets at shutdown


if __name__ == "__main__":
    main()

"""Run the mgn-verify benchmark suite: JSON results plus a readable table.

    python benchmarks/run.py                 # full suite (~4 min), updates docs/performance.md
    python benchmarks/run.py --quick         # CI: small sizes, one repetition, < 60 s
    python benchmarks/run.py --only overhead --only startup --out /tmp/r.json
    python benchmarks/run.py --profile       # also write pyinstrument profiles to benchmarks/results/

Benchmarks: scheduler, overhead, hang, compare, startup, scaling (see each ``bench_*.py``).
Targets are evaluated and shown, never asserted: the exit status is non-zero only when a
benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_compare
import bench_hang
import bench_overhead
import bench_scaling
import bench_scheduler
import bench_startup
from _common import HERE, Context
from _server import DelayServer

BENCHMARKS: dict[str, ModuleType] = {
    "scheduler": bench_scheduler, "overhead": bench_overhead, "hang": bench_hang,
    "compare": bench_compare, "startup": bench_startup, "scaling": bench_scaling,
}
DOCS = HERE.parent / "docs" / "performance.md"
START, END = "<!-- BENCH:RESULTS:START -->", "<!-- BENCH:RESULTS:END -->"


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python, OS, load: what the numbers were measured on."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = float("nan")
    with contextlib.suppress(ValueError, OSError):
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=HERE, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    from mgn_verify import __version__

    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(ram_gb, 1),
            "python": sys.version.split()[0],
            "platform": platform.platform(), "mgn_verify": __version__, "git": commit,
            "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def _fmt(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def table(results: dict[str, Any]) -> str:
    """The results as one Markdown table."""
    lines = ["| Benchmark | Case | Metric | Median | Min | Max | Runs | Target | Met |",
             "|---|---|---|---:|---:|---:|---:|---|---|"]
    for name, bench in results["benchmarks"].items():
        if bench.get("error"):
            lines.append(f"| {name} | ERROR | {bench['error'].splitlines()[-1]} | | | | | | |")
        for row in bench.get("rows", []):
            met = {True: "yes", False: "**NO**", None: ""}[row["met"]]
            unit = f" {row['unit']}" if row["unit"] else ""
            lines.append(f"| {name} | {row['case']} | {row['metric']} | {_fmt(row['median'])}{unit} | "
                         f"{_fmt(row['min'])} | {_fmt(row['max'])} | {row['runs']} | "
                         f"{row['target'] or ''} | {met} |")
    return "\n".join(lines)


def machine_text(info: dict[str, Any]) -> str:
    return (f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
            f"{info['platform']}; mgn-verify {info['mgn_verify']} (git {info['git'] or '?'}); "
            f"load average {info['loadavg_start']} at start, {info.get('loadavg_end')} at end"
            + ("; PYTHONDONTWRITEBYTECODE=1 (generated files are compiled on every load)"
               if info.get("PYTHONDONTWRITEBYTECODE") else ""))


def update_docs(results: dict[str, Any]) -> None:
    text = DOCS.read_text() if DOCS.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    body = (f"Measured {results['started_at']} ({results['mode']} mode, {results['duration_s']:.0f} s) on: "
            f"{machine_text(results['machine'])}.\n\n{table(results)}\n")
    head, rest = text.split(START, 1)
    DOCS.write_text(f"{head}{START}\n{body}{END}{rest.split(END, 1)[1]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (CI)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS),
                        help="run only NAME (repeatable)")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/latest.json, "
                                                  "or quick.json with --quick)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick)")
    parser.add_argument("--profile", action="store_true",
                        help="write pyinstrument profiles of the overhead hot paths")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args(argv)
    out: Path = args.out or HERE / "results" / ("quick.json" if args.quick else "latest.json")
    names = args.only or list(BENCHMARKS)
    started = time.perf_counter()
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(),
                               "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "benchmarks": {}}
    failed = False
    with DelayServer(lifetime=1800) as server, tempfile.TemporaryDirectory(prefix="mgn-bench-") as tmp:
        profile_dir = HERE / "results" if args.profile else None
        ctx = Context(quick=args.quick, reps=args.reps or (1 if args.quick else 3), port=server.port,
                      tmp=Path(tmp), profile_dir=profile_dir)
        for name in names:
            t0 = time.perf_counter()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            entry: dict[str, Any] = {"rows": [], "error": None}
            try:
                entry["rows"] = [row.to_dict() for row in BENCHMARKS[name].run(ctx)]
            except Exception:
                entry["error"] = traceback.format_exc()
                failed = True
                print(entry["error"], file=sys.stderr)
            entry["duration_s"] = round(time.perf_counter() - t0, 2)
            results["benchmarks"][name] = entry
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n{machine_text(results['machine'])}\n\n{table(results)}\n\nresults: {out}")
    if not args.quick and not args.only and not args.no_docs:
        update_docs(results)
        print(f"updated {DOCS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

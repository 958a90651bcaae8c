"""Shared pieces of the benchmark suite: the run context, result rows, subprocess timing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_worker.py"
#: Only the generated checks: no config file, no third-party autoload, built-in layers blocked.
MGN_ENV = {"MGN_CONFIG": os.devnull, "MGN_DISABLE_PLUGIN_AUTOLOAD": "1"}
MGN_BLOCK = [arg for layer in ("system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet")
             for arg in ("-p", f"no:{layer}")]


@dataclass
class Context:
    """What every benchmark gets: sizes/repetitions mode, the delay server port, a temp dir."""

    quick: bool
    reps: int
    port: int
    tmp: Path
    profile_dir: Path | None = None

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Row:
    """One measured quantity over several runs; ``limit``/``better`` define its target."""

    benchmark: str
    case: str
    metric: str
    unit: str
    values: list[float]
    limit: float | None = None
    better: str = "lower"           # "lower": value <= limit meets it; "higher": value >= limit
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        med = statistics.median(self.values) if self.values else float("nan")
        lower = self.better == "lower"
        met = None if self.limit is None else (med <= self.limit if lower else med >= self.limit)
        target = None if self.limit is None else f"{'<=' if self.better == 'lower' else '>='} {self.limit:g}"
        return {"benchmark": self.benchmark, "case": self.case, "metric": self.metric, "unit": self.unit,
                "median": med, "min": min(self.values, default=float("nan")),
                "max": max(self.values, default=float("nan")), "runs": len(self.values),
                "values": self.values, "target": target, "met": met, "extra": self.extra}


def run_worker(checks_dir: Path, *, concurrency: int = 32, timeout: float = 10.0, baseline: bool = False,
               profile: Path | None = None, limit: float = 300.0) -> dict[str, Any]:
    """One ``_worker.py`` run in a fresh interpreter; its JSON measurements."""
    argv = [sys.executable, str(WORKER), "--checks-dir", str(checks_dir), "--concurrency", str(concurrency),
            "--timeout", str(timeout)]
    argv += ["--baseline"] if baseline else []
    argv += ["--profile", str(profile)] if profile else []
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=limit, env={**os.environ, **MGN_ENV})
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Timed:
    wall_s: float
    returncode: int
    stdout: str
    stderr: str


def time_cmd(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
             limit: float = 300.0) -> Timed:
    """Wall time of one command, start to exit."""
    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=full_env, cwd=cwd, timeout=limit)
    return Timed(time.perf_counter() - t0, proc.returncode, proc.stdout, proc.stderr)


def mgn_argv(*args: str) -> list[str]:
    """``mgn ARGS`` through the installed console script when present (what users run)."""
    script = Path(sys.executable).with_name("mgn")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "mgn_verify", *args]

"""Benchmark 5, start-up: ``mgn --version``, ``mgn verify list``, ``mgn verify system`` against
``python3 -c pass``, and which modules each one imports.

Wall times are end to end through the installed ``mgn`` script. Imports are taken from the
same command run in-process with ``python -X importtime`` and ``sys.modules`` dumped at exit;
``kubernetes`` and ``rethinkdb`` (heavy, only needed by their layers) must not be imported.
Target: ``mgn --version`` ≤ 4 x ``python3 -c pass``.
"""

from __future__ import annotations

import json
import sys

from _common import Context, Row, mgn_argv, time_cmd

NAME = "startup"
FORBIDDEN = ("kubernetes", "rethinkdb")
COMMANDS: dict[str, list[str]] = {
    "mgn --version": ["--version"], "mgn verify list": ["verify", "list"],
    "mgn verify system": ["verify", "system"],
}
ENV = {"MGN_CONFIG": "/dev/null"}


def _imports(args: list[str], out: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Modules in ``sys.modules`` at exit, and the slowest top-level imports (cumulative µs)."""
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({out!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            "from mgn_verify.cli import main\n"
            f"main({args!r})\n")
    timed = time_cmd([sys.executable, "-X", "importtime", "-c", code], env=ENV)
    with open(out) as fh:
        modules: list[str] = json.load(fh)
    top: list[tuple[str, int]] = []
    for line in timed.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2]
            if not name.startswith("   "):  # top level: one leading space only
                top.append((name.strip(), int(parts[1])))
    return modules, sorted(top, key=lambda item: -item[1])[:8]


def run(ctx: Context) -> list[Row]:
    reps = ctx.size(10, 1)
    commands = {"python3 -c pass": [sys.executable, "-c", "pass"]}
    commands |= {name: mgn_argv(*args) for name, args in COMMANDS.items()}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, int] = {}
    for _ in range(reps):
        for name, argv in commands.items():
            timed = time_cmd(argv, env=ENV)
            walls[name].append(timed.wall_s)
            codes[name] = timed.returncode
    rows = [Row(NAME, name, "wall", "s", values, extra={"exit_code": codes[name]})
            for name, values in walls.items()]
    python = walls["python3 -c pass"]
    rows.append(Row(NAME, "mgn --version", "wall / python3 -c pass", "x",
                    [v / p for v, p in zip(walls["mgn --version"], python, strict=True)], 4.0))
    for name, args in COMMANDS.items():
        modules, slowest = _imports(args, str(ctx.tmp / "modules.json"))
        bad = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in FORBIDDEN})
        note = "slowest: " + ", ".join(f"{m} {us / 1000:.0f}ms" for m, us in slowest[:4])
        rows.append(Row(NAME, name, "modules imported", "", [float(len(modules))],
                        extra={"note": note,
                               "slowest_imports_us": slowest, "top_level_packages":
                               sorted({m.split(".")[0] for m in modules if not m.startswith("_")})}))
        rows.append(Row(NAME, name, "kubernetes/rethinkdb imported", "", [float(len(bad))], 0.0,
                        extra={"imported": bad}))
    return rows

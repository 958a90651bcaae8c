"""Benchmark 4, side by side: the same 200 TCP/HTTP checks as mgn checks and as pytest tests.

Workload: 200 independent checks against the delay server, all with 20 ms server-side latency;
half open a TCP connection and do a ``PING 20`` round trip, half do an HTTP ``GET /20`` with
``http.client``. Every runner is timed end to end as a user runs it (process start to exit):

* ``mgn``: ``mgn verify --checks-dir DIR -o json`` (default concurrency 32; also 128).
* ``pytest``: the same helper calls as plain tests, ``python -m pytest -q``.
* ``pytest-xdist -n 2``: the same tests with ``-p xdist.plugin -n 2``.
* ``pytest-testinfra``: each test does the same round trip through ``host.run('python -c …')``
  (testinfra probes a host by running commands on it; a process per check). Run once, not
  per repetition: it takes ~45 s.
* ``testinfra host.socket``: ``host.socket('tcp://…').is_listening`` (the idiomatic testinfra
  check; a socket-table lookup via ``ss`` with no round trip, so *cheaper* than the others).

pytest runs with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` and only the plugins it needs, so
unrelated installed pytest plugins do not slow it down (this favours pytest).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import MGN_BLOCK, MGN_ENV, Context, Row, mgn_argv, time_cmd
from _gen import flat, write_checks, write_pytests

NAME = "compare"
SLOW = "pytest-testinfra host.run"
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _pytest(directory: Path, *plugins: str) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    for plugin in plugins:
        argv += ["-p", plugin]
    return [*argv, str(directory)]


def run(ctx: Context) -> list[Row]:
    n = ctx.size(200, 20)
    nodes = flat(n, ("ping", "http"))
    checks = write_checks(ctx.tmp / "compare-mgn", nodes, port=ctx.port)
    plain = write_pytests(ctx.tmp / "compare-pytest", nodes, port=ctx.port)
    infra = write_pytests(ctx.tmp / "compare-testinfra", nodes, port=ctx.port, style="testinfra")
    infra_socket = write_pytests(ctx.tmp / "compare-testinfra-socket", nodes, port=ctx.port,
                                 style="testinfra-socket")
    mgn = [*mgn_argv("verify", "--checks-dir", str(checks), *MGN_BLOCK, "-o", "json")]
    runners: dict[str, tuple[list[str], dict[str, str], Path | None]] = {
        "mgn (C=32)": (mgn, MGN_ENV, None),
        "mgn (C=128)": ([*mgn, "--concurrency", "128"], MGN_ENV, None),
        "pytest": (_pytest(plain), PYTEST_ENV, plain),
        "pytest-xdist -n 2": ([*_pytest(plain, "xdist.plugin"), "-n", "2"], PYTEST_ENV, plain),
        "pytest-testinfra host.run": (_pytest(infra, "testinfra.plugin"), PYTEST_ENV, infra),
        "testinfra host.socket (no round trip)": (_pytest(infra_socket, "testinfra.plugin"), PYTEST_ENV,
                                                  infra_socket),
    }
    walls: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(ctx.reps):  # interleaved, so background noise hits every runner alike
        for name, (argv, env, cwd) in runners.items():
            if name == SLOW and rep > 0:  # ~45 s a run on the reference machine: once is enough
                continue
            timed = time_cmd(argv, env=env, cwd=cwd)
            if timed.returncode != 0:
                output = (timed.stdout + timed.stderr)[-1500:]
                raise RuntimeError(f"{name} failed ({timed.returncode}): {output}")
            walls[name].append(timed.wall_s)
    case = f"{n} TCP/HTTP checks, 20 ms"
    rows = [Row(NAME, case, f"wall: {name}", "s", values) for name, values in walls.items()]
    base = walls["mgn (C=32)"]
    targets = {"pytest": 20.0, "pytest-xdist -n 2": 5.0, "pytest-testinfra host.run": 20.0,
               "testinfra host.socket (no round trip)": None}
    for name, limit in targets.items():
        ratios = [other / own for other, own in zip(walls[name], base, strict=False)]  # paired by repetition
        rows.append(Row(NAME, case, f"{name} / mgn (C=32)", "x", ratios, limit, better="higher"))
    return rows

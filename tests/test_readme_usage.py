"""Every command of the README's usage block (the fenced code under "## Using it") runs as written.

Each line is executed by a shell (pipes included) with ``mgn`` on PATH, HOME sandboxed and
``MGN_CONFIG`` pointing at a running lab whose cluster is ``prod-east`` (the id the README uses),
from a directory where ``docs/examples`` is what the repository has. The lines run in parallel;
each must end without a usage error (exit 0, 1, 3 or 4), most with an exact expectation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # a lab and ~15 real `mgn` processes: tens of seconds


def usage_lines() -> list[str]:
    """The ``mgn ...`` lines of the block, without their trailing comments."""
    section = (REPO / "README.md").read_text().split("\n## Using it\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.startswith("mgn ")]


@dataclass(frozen=True)
class Ran:
    line: str
    cwd: Path
    code: int
    stdout: str
    stderr: str
    env_config: str


def _shims(directory: Path) -> Path:
    """``mgn`` (this checkout's, with this interpreter) and, where missing, a minimal ``jq``."""
    directory.mkdir()
    (directory / "mgn").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mgn_verify "$@"\n')
    if shutil.which("jq") is None:  # enough of jq for `jq .summary`
        (directory / "jq").write_text(
            f'#!/bin/sh\nexec "{sys.executable}" -c "import json,sys; data=json.load(sys.stdin)\n'
            f'for part in sys.argv[1].strip(\'.\').split(\'.\'): data = data[part] if part else data\n'
            f'print(json.dumps(data))" "$1"\n')
    for shim in directory.iterdir():
        shim.chmod(0o755)
    return directory


def _run(line: str, cwd: Path, env: dict[str, str]) -> Ran:
    cwd.mkdir(parents=True)
    (cwd / "docs").symlink_to(REPO / "docs")  # `--checks-dir docs/examples/checks` as in a clone
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    return Ran(line, cwd, proc.returncode, proc.stdout, proc.stderr, env["MGN_CONFIG"])


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Ran]]:
    from mgn_verify.lab import Lab

    root = tmp_path_factory.mktemp("readme")
    shims = _shims(root / "bin")
    with Lab(cluster_id="prod-east") as lab:
        env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
               "HOME": str(root / "home"), "MGN_CONFIG": str(lab.config_path), "PYTHONPATH": str(REPO)}
        env.pop("NO_COLOR", None)
        lines = usage_lines()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda item: _run(item[1], root / f"line{item[0]}", env), enumerate(lines))
            yield {result.line: result for result in results}


def _rows(ran: Ran) -> dict[str, object]:
    """``config show --json`` / ``verify list --json`` rows by key or id."""
    return {row.get("key", row.get("id")): row for row in json.loads(ran.stdout)}


EXPECTED: dict[str, Callable[[Ran], bool]] = {
    # Stricter expectations for the lines whose outcome is known against a clean lab.
    "mgn verify list --json": lambda r: r.code == 0 and "system.swap" in _rows(r),
    "mgn config show --json": lambda r: r.code == 0
    and _rows(r)["defaults.cluster"] == {"key": "defaults.cluster", "value": "prod-east",
                                         "source": f"file:{r.env_config}"},
    "mgn verify explain system.swap": lambda r: r.code == 0 and r.stdout.startswith("system.swap: "),
    "mgn verify graph --format mermaid": lambda r: r.code == 0 and r.stdout.startswith("graph LR"),
    "mgn verify all --lab --fault rethinkdb.down": lambda r: r.code == 1 and "rethinkdb.reachable" in r.stdout,
    "mgn verify kubernetes --cluster prod-east": lambda r: "kubernetes.nodes.ready[prod-east]" in r.stdout,
    "mgn verify -o json | jq .summary": lambda r: "exit_code" in json.loads(r.stdout),
    "mgn verify --checks-dir docs/examples/checks --tag acme":
        lambda r: "acme.tmp.writable" in r.stdout and "system.swap" not in r.stdout,
    # A clean lab passes at once: nothing to wait for.
    "mgn verify --wait 5m kubernetes": lambda r: r.code == 0,
}


def _exact(ran: Ran) -> None:
    for prefix, expected in EXPECTED.items():
        if ran.line.startswith(prefix):
            assert expected(ran), f"{ran.line}: exit {ran.code}\n{ran.stdout[-2000:]}\n{ran.stderr[-2000:]}"
    if "--json out/report.json" in ran.line:
        report = json.loads((ran.cwd / "out" / "report.json").read_text())
        assert report["summary"]["exit_code"] == ran.code
        assert (ran.cwd / "out" / "junit.xml").read_text().startswith("<?xml")


@pytest.mark.parametrize("line", usage_lines())
def test_readme_usage_line_runs_as_written(ran: dict[str, Ran], line: str) -> None:
    result = ran[line]
    assert result.code in (0, 1, 3, 4), f"{line}: exit {result.code}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr and "mgn: error:" not in result.stderr, result.stderr[-3000:]
    _exact(result)


def test_the_usage_block_is_found() -> None:
    lines = usage_lines()
    assert len(lines) >= 10 and all(not re.search(r"\[--?\w", line) for line in lines), lines

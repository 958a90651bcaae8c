"""Shared helpers: write check files, run the real CLI (in-process or as a process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mgn_verify.cli import cli
from tests.helpers import ISOLATED, JUNIT_XSD, REPO, REPORT_SCHEMA, Run

__all__ = ["ISOLATED", "JUNIT_XSD", "REPO", "REPORT_SCHEMA", "Run"]  # re-exported for older imports

@pytest.fixture
def checks_dir(tmp_path: Path) -> Callable[..., Path]:
    """``checks_dir(check_x="source", ...)`` writes check_x.py files and returns the directory."""
    directory = tmp_path / "checks"
    directory.mkdir()

    def write(**modules: str) -> Path:
        for name, source in modules.items():
            (directory / f"{name}.py").write_text(textwrap.dedent(source))
        return directory

    return write


@pytest.fixture
def mgn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run ``mgn ARGS`` in-process (click's runner) with a JSON report; no config file."""
    monkeypatch.setenv("MGN_CONFIG", os.devnull)
    monkeypatch.delenv("NO_COLOR", raising=False)
    counter = iter(range(10_000))

    def run(*args: str, report: bool = True, env: dict[str, str] | None = None) -> Run:
        path = tmp_path / f"report-{next(counter)}.json"
        extra = ["--json", str(path)] if report and args and args[0] == "verify" and "--json" not in args \
            and len(args) > 1 and args[1] not in ("list", "explain", "graph") else []
        result = CliRunner().invoke(cli, [*args, *extra], env=env, catch_exceptions=False)
        data = json.loads(path.read_text()) if path.exists() else None
        return Run(result.exit_code, result.stdout, result.stderr, data)

    return run


@pytest.fixture
def mgn_process(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``mgn`` as a separate process (for signals, exit codes, stdout/stderr)."""
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "MGN_CONFIG": os.devnull, **(env or {})}
        return subprocess.run([sys.executable, "-m", "mgn_verify", *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout, cwd=tmp_path)

    return run


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Tests never read the developer's ~/.metaguildnet/config.yaml."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield

"""Shared test helpers, importable from any test as ``from tests.helpers import ...``
(pyproject sets ``pythonpath = ["."]``, so plain ``pytest`` and ``python -m pytest`` both work)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Vendored (MIT, Jenkins xUnit plugin; licence in its header): the suite needs nothing outside the repo.
JUNIT_XSD = REPO / "tests" / "schemas" / "junit-10.xsd"
REPORT_SCHEMA = REPO / "reports" / "schema" / "report-v1.json"
# Only our test checks: the built-in layers are blocked, no config file is read.
ISOLATED = [arg for layer in ("system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet")
            for arg in ("-p", f"no:{layer}")]


def statuses(report: dict[str, Any] | None) -> dict[str, str]:
    """Check id -> status of a JSON report (empty for no report)."""
    return {r["id"]: r["status"] for r in (report or {}).get("results", [])}


def result_of(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    """One check's result in a JSON report."""
    return next(r for r in report["results"] if r["id"] == check_id)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    @property
    def statuses(self) -> dict[str, str]:
        return statuses(self.report)

    def result(self, check_id: str) -> dict[str, Any]:
        assert self.report is not None, self.stderr
        return result_of(self.report, check_id)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.02)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """Wait until a running ``mgn`` (``proc``) has reached the point where a check writes
    ``path``; fail at once, with its stderr, if it ended first, and never leave it running."""
    def there() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path.name} appeared: {proc.communicate()[1]}")
        return path.exists()

    try:
        wait_until(there, timeout=timeout, what=f"{path.name} appearing")
    except AssertionError:
        proc.kill()
        raise


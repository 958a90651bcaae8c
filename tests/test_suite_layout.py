"""The test suite runs from any clone: plain ``pytest`` (the console script) and ``python -m pytest``,
from the repo or from ``tests/``, any mix of directories, any import mode; nothing outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import JUNIT_XSD, REPO

# Test files from both sub-suites: their shared helpers once came from whichever ``conftest``
# module happened to be in sys.modules, so naming both broke collection.
MIXED = ["checks/test_network_dns.py", "lab/test_headscale_sim.py", "checks/test_network_tls.py"]
# What the ``pytest`` console script does: no cwd on sys.path (``-P``), then pytest's main.
CONSOLE_SCRIPT = [sys.executable, "-P", "-c", "import sys, pytest; sys.exit(pytest.console_main())"]


def _collect(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONSOLE_SCRIPT, "--collect-only", "-q", "-p", "no:randomly", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_console_script_collects_mixed_directories_from_tests_dir() -> None:
    proc = _collect(*MIXED, cwd=REPO / "tests")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ tests collected in ", summary), summary  # "N tests collected, M errors" otherwise


def test_importlib_mode_collects_mixed_directories() -> None:
    proc = _collect("--import-mode=importlib", *(f"tests/{path}" for path in MIXED), cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_no_test_imports_a_conftest_module() -> None:
    """Helpers live in real modules (tests.helpers, tests.checks.servers, tests.lab.helpers)."""
    offenders = [f"{path.relative_to(REPO)}: {line.strip()}" for path in (REPO / "tests").rglob("*.py")
                 for line in path.read_text().splitlines()
                 if re.match(r"\s*(from\s+(tests\.)?(\w+\.)?conftest\s+import|import\s+conftest)\b", line)
                 or re.match(r"\s*from\s+_layer_helpers\s+import", line)]
    assert offenders == []


def test_junit_schema_is_vendored_with_its_licence() -> None:
    assert JUNIT_XSD.is_relative_to(REPO) and JUNIT_XSD.is_file()
    header = JUNIT_XSD.read_text()[:2000]
    assert "The MIT License" in header and "jenkinsci/xunit-plugin" in header


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("path", [".coverage", ".coverage.host.123", "htmlcov/index.html",
                                  "benchmarks/results/profile_overhead_0.txt", "benchmarks/results/quick.json"])
def test_machine_specific_outputs_are_ignored(path: str) -> None:
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
    assert proc.returncode == 0, f"{path} is not ignored by .gitignore"


def test_committed_benchmark_results_stay_tracked() -> None:
    """The reference results the docs quote stay in the repo (only the profiles are ignored)."""
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", "benchmarks/results/latest.json"], cwd=REPO)
    assert proc.returncode == 1

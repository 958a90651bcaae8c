"""The benchmark suite runs end to end in ``--quick`` mode and reports every benchmark.

This checks that the suite *works* (every benchmark produced well-formed rows), never the
numbers: timing targets live in ``benchmarks/`` and ``docs/performance.md``, not in tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"scheduler", "overhead", "hang", "compare", "startup", "scaling"}


@pytest.mark.slow
def test_quick_suite_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["mode"] == "quick"
    assert {"cpu", "cores", "ram_gb", "python"} <= set(results["machine"])
    assert set(results["benchmarks"]) == EXPECTED
    for name, bench in results["benchmarks"].items():
        assert bench["error"] is None, f"{name}: {bench['error']}"
        assert bench["rows"], f"{name} produced no rows"
        for row in bench["rows"]:
            assert row["benchmark"] == name and row["case"] and row["metric"]
            assert row["runs"] == len(row["values"]) >= 1
            assert all(math.isfinite(v) and v >= 0 for v in row["values"]), row
            assert row["min"] <= row["median"] <= row["max"], row
            assert row["met"] in (True, False, None)
            assert (row["target"] is None) == (row["met"] is None), row
    rows = [row for bench in results["benchmarks"].values() for row in bench["rows"]]
    targets = {row["metric"] for row in rows if row["target"]}
    assert {"mgn wall / bound", "run phase per check", "peak RSS", "wall", "wall / python3 -c pass",
            "pytest / mgn (C=32)", "pytest-xdist -n 2 / mgn (C=32)", "per-check cost growth"} <= targets
    assert "| Benchmark |" in proc.stdout  # the readable table is printed

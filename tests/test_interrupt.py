"""Ctrl-C: a real ``mgn`` process gets SIGINT mid-run, exits 130 and still writes every report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD


def test_sigint_stops_cleanly_with_complete_reports(checks_dir, tmp_path: Path) -> None:
    started = tmp_path / "started"
    directory = checks_dir(check_i=f'''
import asyncio, time
from pathlib import Path
from mgn_verify import check
@check(id="i.quick")
def check_quick(): pass
@check(id="i.slow_sync", timeout=600)
def check_slow_sync():
    Path({str(started)!r}).write_text("go")
    time.sleep(600)
@check(id="i.slow_async", timeout=600)
async def check_slow_async(): await asyncio.sleep(600)
@check(id="i.after", requires=["i.slow_sync"])
def check_after(): pass
''')
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(report), "--junit", str(junit)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the slow check never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = json.loads(report.read_text())
    assert data["run"]["interrupted"] is True
    assert data["summary"]["exit_code"] == 130
    statuses = {r["id"]: (r["status"], r["message"].split(" after")[0]) for r in data["results"]}
    assert statuses == {
        "i.quick": ("pass", ""), "i.slow_sync": ("error", "interrupted"),
        "i.slow_async": ("error", "interrupted"), "i.after": ("skip", "not run: interrupted"),
    }
    assert data["summary"]["root_causes"] == []  # cut-off checks found nothing: no "fix these first"
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))
    assert "Exit 130: interrupted (Ctrl-C or SIGTERM)" in stdout

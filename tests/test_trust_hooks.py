"""A hook after the checks (``mgn_run_finish``) that hangs costs its own work, never the report
or the exit code's meaning (issue 9, found by trying it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ISOLATED, wait_until

HANGING_FINISH = '''
import time
from pathlib import Path

def check_ok():
    pass

def mgn_run_finish(report):
    Path({marker!r}).write_text("in the hook")
    time.sleep(60)
'''


def test_a_hanging_run_finish_hook_is_abandoned_at_the_timeout(mgn_process, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_h=HANGING_FINISH.format(marker=str(tmp_path / "marker")))
    out = tmp_path / "r.json"
    started = time.monotonic()
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--timeout", "1", "--json", str(out))
    assert time.monotonic() - started < 20  # not the 60 s of the hook, not the watchdog's kill
    assert proc.returncode == 2, proc.stderr
    data = json.loads(out.read_text())
    assert data["summary"]["errors"] == ["hook mgn_run_finish did not return within 1 s (abandoned)"]
    assert [r["status"] for r in data["results"]] == ["pass"]


def test_ctrl_c_while_a_run_finish_hook_hangs_ends_in_130_with_the_report(checks_dir, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    directory = checks_dir(check_h=HANGING_FINISH.format(marker=str(marker)))
    out = tmp_path / "r.json"
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--timeout", "30", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(marker.exists, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = json.loads(out.read_text())
    assert data["run"]["interrupted"] is True and data["summary"]["exit_code"] == 130
    assert [r["status"] for r in data["results"]] == ["pass"]

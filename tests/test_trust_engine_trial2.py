"""A second adversarial trial of the run engine (issue 9): a check that stops the event loop or
cancels every other task does not end the run, every process a check left behind is stopped (its
grandchildren too), and a check given up by the scheduler keeps what it printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ISOLATED, result_of, statuses, wait_for_file, wait_until


def _verify(mgn_process, directory: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                 dict]:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(report),
                       "--junit", str(junit), *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert report.exists() and junit.exists(), proc.stderr
    return proc, json.loads(report.read_text())



# -- 1. a check is not the event loop's nor the scheduler's master --------------------------------

STOPS_THE_LOOP = '''
import asyncio
from mgn_verify import check

@check(id="lp.stop", timeout=3)
async def check_stop():
    asyncio.get_running_loop().stop()
    await asyncio.sleep(.5)

@check(id="lp.other", timeout=3)
async def check_other():
    await asyncio.sleep(.2)

@check(id="lp.sync", timeout=3)
def check_sync():
    pass
'''


def test_a_check_stopping_the_event_loop_does_not_end_the_run(mgn_process, checks_dir, tmp_path: Path) -> None:
    proc, data = _verify(mgn_process, checks_dir(check_lp=STOPS_THE_LOOP), tmp_path)
    assert statuses(data) == {"lp.stop": "pass", "lp.other": "pass", "lp.sync": "pass"}, proc.stderr
    assert proc.returncode == 0, proc.stderr


CANCELS_EVERYTHING = '''
import asyncio
from mgn_verify import check

@check(id="cx.slow", timeout=5)
async def check_slow():
    await asyncio.sleep(2)

@check(id="cx.sync", timeout=5)
def check_sync():
    import time; time.sleep(.5)

@check(id="cx.killer", timeout=5)
async def check_killer():
    await asyncio.sleep(.1)
    for t in asyncio.all_tasks():
        t is not asyncio.current_task() and t.cancel()
    await asyncio.sleep(.1)

@check(id="cx.after", requires=["cx.killer"], timeout=5)
async def check_after():
    await asyncio.sleep(0)
'''


def test_a_check_cancelling_every_other_task_does_not_end_the_run(mgn_process, checks_dir, tmp_path: Path) -> None:
    proc, data = _verify(mgn_process, checks_dir(check_cx=CANCELS_EVERYTHING), tmp_path)
    by_id = statuses(data)
    assert by_id["cx.killer"] == "pass" and by_id["cx.after"] == "pass", proc.stderr
    for victim in ("cx.slow", "cx.sync"):
        assert by_id[victim] == "error", proc.stderr
        assert "cancelled" in result_of(data, victim)["message"]
    assert proc.returncode == 3, proc.stderr   # an error, no fail


# -- 2. every process a check left behind, grandchildren included -----------------------------------

LEAVES_A_TREE = '''
import subprocess
from mgn_verify import check

@check(id="tree.leave", timeout=5)
def check_leave():
    # returns once sh has started both (its own pipe: a missed sleep never holds mgn's stderr)
    sh = subprocess.Popen(["sh", "-c", "sleep {seconds} & sleep {seconds} & echo ready; wait"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sh.stdout.readline() == "ready\\n"
'''


def _pgrep(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_grandchildren_a_check_left_running_are_stopped_too(mgn_process, checks_dir, tmp_path: Path) -> None:
    seconds = f"3017.{os.getpid() % 1000}"   # unique to this test run
    pattern = f"sleep {seconds}"
    try:
        proc, data = _verify(mgn_process, checks_dir(check_tree=LEAVES_A_TREE.format(seconds=seconds)), tmp_path)
        assert statuses(data) == {"tree.leave": "pass"}, proc.stderr
        wait_until(lambda: not _pgrep(pattern), timeout=5, what="every left-over sleep ending")
        warning = next(w for w in data["run"]["warnings"] if w.startswith("stopped 3 processes"))
        assert warning.count("sleep (pid") == 2 and "sh (pid" in warning, warning
    finally:
        for pid in _pgrep(pattern):
            os.kill(pid, signal.SIGKILL)


# -- 3. a check the scheduler settles keeps what it printed -----------------------------------------

PRINTS_THEN_BLOCKS = '''
import time
from mgn_verify import check

@check(id="pb.block", timeout=0.5)
async def check_block():
    print("printed-before-blocking")
    time.sleep(5)
'''

PRINTS_THEN_WAITS = '''
import asyncio, pathlib
from mgn_verify import check

@check(id="pw.wait", timeout=60)
async def check_wait():
    print("printed-before-the-signal")
    pathlib.Path({flag!r}).write_text("x")
    await asyncio.sleep(60)
'''


def test_a_check_blocking_the_loop_keeps_its_output(mgn_process, checks_dir, tmp_path: Path) -> None:
    proc, data = _verify(mgn_process, checks_dir(check_pb=PRINTS_THEN_BLOCKS), tmp_path)
    result = result_of(data, "pb.block")
    assert result["status"] == "error" and "blocked the event loop" in result["message"], proc.stderr
    assert "printed-before-blocking" in result["output"]


def test_an_interrupted_check_keeps_its_output(checks_dir, tmp_path: Path) -> None:
    flag, report = tmp_path / "started", tmp_path / "r.json"
    directory = checks_dir(check_pw=PRINTS_THEN_WAITS.format(flag=str(flag)))
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(report)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "MGN_CONFIG": os.devnull},
                            cwd=tmp_path)
    try:
        wait_for_file(flag, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 130, stderr
        result = result_of(json.loads(report.read_text()), "pw.wait")
        assert result["status"] == "error" and "printed-before-the-signal" in result["output"], result
    finally:
        if proc.poll() is None:
            proc.kill()

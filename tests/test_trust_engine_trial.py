"""What an adversarial trial of the run engine found (issue 9): stuck workers must not eat
capacity, a blocking async fixture or a run of blocking async checks must not stall the run, a
check's own CancelledError is its error, messages are bounded, processes a check leaves behind
are stopped, and the watchdog names only checks that are really running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mgn_verify._pool import WorkerPool
from mgn_verify._safejson import MAX_STR
from tests.helpers import ISOLATED, result_of, statuses, wait_until


def _verify(mgn_process, directory: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                 dict]:
    report = tmp_path / "r.json"
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(report), *extra)
    assert report.exists(), proc.stderr
    return proc, json.loads(report.read_text())



# -- 1. stuck workers never make quick checks "time out" ----------------------------------------

STUCK = '''
import threading
from mgn_verify import check, parametrize

@parametrize("i", list(range(4)))
@check(id="st.hang", timeout=0.4)
def check_hang(i): threading.Event().wait()

@parametrize("i", list(range(4)))
@check(id="st.ok", timeout=0.4)
def check_ok(i): pass
'''


def test_stuck_workers_are_replaced_and_quick_checks_pass(mgn_process, checks_dir, tmp_path: Path) -> None:
    proc, data = _verify(mgn_process, checks_dir(check_st=STUCK), tmp_path, "--concurrency", "2")
    by_id = statuses(data)
    assert {cid: s for cid, s in by_id.items() if cid.startswith("st.ok")} == {
        f"st.ok[{i}]": "pass" for i in range(4)}, proc.stdout
    assert all(s == "error" for cid, s in by_id.items() if cid.startswith("st.hang"))


def test_a_given_up_job_is_replaced_at_once_and_its_worker_retires_when_it_returns() -> None:
    pool = WorkerPool(1)
    release = threading.Event()

    async def scenario() -> tuple[str, float]:
        stuck = pool.submit(release.wait)
        wait_until(lambda: stuck.started is not None, what="the stuck job starting")
        stuck.future.cancel()   # the runner gave it up (its timeout)
        pool.abandon(stuck)
        quick = pool.submit(lambda: "done")
        value = await asyncio.wait_for(quick.future, 2)
        assert quick.started is not None
        return value, quick.started

    try:
        value, _ = asyncio.run(scenario())
        assert value == "done"
        assert pool.live == 2   # the stuck worker and its replacement
        release.set()
        wait_until(lambda: pool.live == 1, what="the returned worker retiring")
    finally:
        release.set()
        pool.shutdown()


# -- 2. an async fixture that blocks the event loop ------------------------------------------------

BLOCKING_FIXTURE = '''
import asyncio, time
from mgn_verify import check, fixture

@fixture
async def ablock():
    time.sleep(30)
    return 1

@check(id="af.uses", timeout=0.5)
async def check_uses(ablock): pass

@check(id="af.uses_sync", timeout=0.5)
def check_uses_sync(ablock): pass

@check(id="af.sync", timeout=0.5)
def check_sync(): pass

@check(id="af.async_ok", timeout=0.5)
async def check_async_ok(): await asyncio.sleep(0.01)
'''


def test_an_async_fixture_blocking_the_loop_is_the_error_of_the_checks_waiting_on_it(
        mgn_process, checks_dir, tmp_path: Path) -> None:
    started = time.monotonic()
    proc, data = _verify(mgn_process, checks_dir(check_af=BLOCKING_FIXTURE), tmp_path)
    elapsed = time.monotonic() - started
    assert statuses(data) == {"af.uses": "error", "af.uses_sync": "error", "af.sync": "pass",
                               "af.async_ok": "pass"}, proc.stdout
    for cid in ("af.uses", "af.uses_sync"):
        message = result_of(data, cid)["message"]
        assert message.startswith("fixture 'ablock' blocked the event loop for 0.5 s"), message
        assert result_of(data, cid)["details"] == {"fixture_error": "ablock"}
    assert proc.returncode == 3, proc.stderr
    assert data["summary"]["errors"] == []
    assert elapsed < 5, "the run waited for the run deadline instead of abandoning the loop"


# -- 3. blocking async checks never starve a healthy one --------------------------------------------

BLOCKING_CHECKS = '''
import asyncio, time
from mgn_verify import check, parametrize

@parametrize("i", list(range(3)))
@check(id="bl.blocking", timeout=0.4)
async def check_blocking(i): time.sleep(20)

@check(id="bl.healthy", timeout=0.4)
async def check_healthy(): await asyncio.sleep(0.01)
'''


def test_time_lost_to_blocked_loops_extends_the_run_deadline(mgn_process, checks_dir, tmp_path: Path) -> None:
    # 3 x 0.4 s of blocked loop is more than the 1 s deadline: the healthy check still runs.
    started = time.monotonic()
    proc, data = _verify(mgn_process, checks_dir(check_bl=BLOCKING_CHECKS), tmp_path,
                         "--set", "verify.run_deadline=1")
    elapsed = time.monotonic() - started
    by_id = statuses(data)
    assert by_id["bl.healthy"] == "pass", result_of(data, "bl.healthy")
    assert all(s == "error" for cid, s in by_id.items() if cid.startswith("bl.blocking"))
    assert data["summary"]["errors"] == []
    assert proc.returncode == 3, proc.stderr
    assert elapsed < 6


def test_the_watchdog_is_postponed_by_the_time_lost() -> None:
    from mgn_verify._watchdog import Watchdog, _fire_at

    watchdog = Watchdog(60, str).start()
    try:
        board = watchdog._board
        assert board is not None
        before = _fire_at(board)
        watchdog.postpone(7.5)
        assert _fire_at(board) == pytest.approx(before + 7.5)
    finally:
        watchdog.close()


# -- 4. a check's own CancelledError is its error ---------------------------------------------------

OWN_CANCEL = '''
import asyncio
from mgn_verify import check

@check(id="cx.raises")
async def check_raises(): raise asyncio.CancelledError("my own")

@check(id="cx.subtask")
async def check_subtask():
    task = asyncio.create_task(asyncio.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    await task

@check(id="cx.sync")
def check_sync(): raise asyncio.CancelledError()

@check(id="cx.after", requires=["cx.raises"])
def check_after(): pass
'''


def test_a_cancelled_error_raised_by_a_check_is_its_error_and_a_root_cause(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_cx=OWN_CANCEL)), *ISOLATED)
    assert run.statuses == {"cx.raises": "error", "cx.subtask": "error", "cx.sync": "error",
                            "cx.after": "blocked"}, run.stdout
    for cid in ("cx.raises", "cx.subtask", "cx.sync"):
        message = run.result(cid)["message"]
        assert "CancelledError" in message and "raised by the check" in message, message
        assert "interrupted" not in message
    assert run.result("cx.after")["blocked_by"] == ["cx.raises"]
    assert run.exit_code == 3
    assert run.report is not None and not run.report["run"]["interrupted"]


# -- 5. messages are bounded ---------------------------------------------------------------------------

BIG_MESSAGE = '''
from mgn_verify import check

PAD = "x" * (16_384 - 20)

@check(id="big.message")
def check_message(): return {"message": "M" * 5_000_000}

@check(id="big.raises")
def check_raises(): raise RuntimeError("E" * 5_000_000)

@check(id="big.secret")
def check_secret(): return {"message": PAD + " https://user:hunter2secretpw@example.com/ " + "y" * 100}
'''


def test_a_huge_message_is_bounded_and_redacted_before_it_is_cut(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_big=BIG_MESSAGE)), *ISOLATED)
    for cid in ("big.message", "big.raises"):
        message = run.result(cid)["message"]
        assert len(message) < MAX_STR + 100
        assert message.endswith("more characters)"), message[-80:]
    secret = run.result("big.secret")["message"]
    assert "hunter2" not in secret and "hunter2" not in run.stdout
    assert len(run.stdout) < 200_000


# -- 6. processes a check leaves running are stopped ---------------------------------------------------

LEAVES_A_PROCESS = '''
import subprocess
from mgn_verify import check

@check(id="lp.sleeper", timeout=0.5)
def check_sleeper():
    proc = subprocess.Popen(["sleep", "301"])
    with open({pidfile!r}, "w") as handle:
        handle.write(str(proc.pid))
    proc.wait()
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return False
    return "(sleep)" in stat and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_pid(pidfile: Path) -> int:
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=10, what="the pid file")
    return int(pidfile.read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_process_a_check_left_running_is_stopped_at_the_end(mgn_process, checks_dir, tmp_path: Path,
                                                             isolate: bool) -> None:
    pidfile = tmp_path / "sleep.pid"
    directory = checks_dir(check_lp=LEAVES_A_PROCESS.format(pidfile=str(pidfile)))
    _, data = _verify(mgn_process, directory, tmp_path, *(["--isolate"] if isolate else []))
    pid = _read_pid(pidfile)
    try:
        assert statuses(data) == {"lp.sleeper": "error"}
        wait_until(lambda: not _alive(pid), timeout=5, what="the left-over sleep ending")
        if not isolate:  # isolated: its whole process group was killed at the timeout
            assert f"stopped 1 process a check left running: sleep (pid {pid})" in data["run"]["warnings"]
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_process_left_running_is_stopped_after_sigterm(checks_dir, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    directory = checks_dir(check_lp=LEAVES_A_PROCESS.format(pidfile=str(pidfile)).replace("timeout=0.5",
                                                                                           "timeout=60"))
    report = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(report)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "MGN_CONFIG": os.devnull},
                            cwd=tmp_path)
    pid = 0
    try:
        pid = _read_pid(pidfile)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 130, stderr
        wait_until(lambda: not _alive(pid), timeout=5, what="the left-over sleep ending")
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)


# -- 7. the watchdog names only checks that are running -----------------------------------------------

HOLDS_THE_GIL = '''
import re
from mgn_verify import check, parametrize

@check(id="gil.evil", timeout=1)
def check_evil(): re.match(r"(a+)+$", "a" * 40 + "b")

@parametrize("i", list(range(30)))
@check(id="gil.fine")
def check_fine(i): pass
'''


@pytest.mark.slow
def test_the_watchdog_names_the_check_holding_the_interpreter_not_finished_ones(
        mgn_process, checks_dir, tmp_path: Path) -> None:
    # All 31 start at once; the no-ops that ran are off the board although the loop, which
    # cannot get the GIL, never collected them (it used to name "one of ... and 26 more").
    directory = checks_dir(check_gil=HOLDS_THE_GIL)
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--set", "verify.run_deadline=0.5")
    assert proc.returncode == -signal.SIGKILL
    line = proc.stderr.strip().splitlines()[-1]
    assert "gil.evil" in line and " more " not in line, line

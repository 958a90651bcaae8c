"""A run always ends, on time: blocked event loops, signals, hanging teardowns, the run deadline,
--isolate, and framework errors that must never exit 0 (issue 9, "A run always ends")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD, wait_for_file, wait_until

BLOCKED = "blocked the event loop for 1.0 s: an async check called blocking code"

BLOCKERS = {
    "sleep": "time.sleep(8)",
    "event_wait": "threading.Event().wait()",
    # A busy loop that swallows everything an interrupter could throw at it.
    "swallowing_loop": """
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass""",
    # Charged to its check although another task runs it.
    "in_a_sub_task": """
    async def inner():
        time.sleep(8)
    await asyncio.gather(inner())""",
}


def _start(directory: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(report), "--junit", str(junit), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    return proc, report, junit


def _complete_reports(report: Path, junit: Path) -> dict:
    data = json.loads(report.read_text())
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))
    return data


@pytest.mark.parametrize("body", BLOCKERS.values(), ids=list(BLOCKERS))
def test_an_async_check_blocking_the_loop_is_error_at_its_deadline_and_the_run_goes_on(
        checks_dir, tmp_path: Path, body: str) -> None:
    indented = body if body.startswith("\n") else "\n    " + body
    began = tmp_path / "began"   # when the checks began (interpreter start-up and loading excluded)
    directory = checks_dir(check_b=f'''
import asyncio, threading, time
from pathlib import Path
from mgn_verify import check
@check(id="b.async_ok")
async def check_async_ok():
    Path({str(began)!r}).write_text(repr(time.monotonic()))
    await asyncio.sleep(0.2)
@check(id="b.sync_ok")
def check_sync_ok(): time.sleep(0.2)
@check(id="b.blocker", timeout=1)
async def check_blocker():{indented}
@check(id="b.after_blocker", requires=["b.blocker"])
def check_after(): pass
@check(id="b.later", requires=["b.sync_ok"])
async def check_later(): await asyncio.sleep(0.1)
''')
    proc, report, junit = _start(directory, tmp_path)
    stdout, stderr = proc.communicate(timeout=30)
    elapsed = time.monotonic() - float(began.read_text())   # one clock for every process
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    data = _complete_reports(report, junit)
    results = {r["id"]: r for r in data["results"]}
    assert results["b.blocker"]["status"] == "error"
    assert results["b.blocker"]["message"] == BLOCKED
    assert results["b.after_blocker"]["status"] == "blocked"
    assert {cid: results[cid]["status"] for cid in ("b.async_ok", "b.sync_ok", "b.later")} == \
        {"b.async_ok": "pass", "b.sync_ok": "pass", "b.later": "pass"}
    assert elapsed < 6, "the run waited for the blocking call instead of abandoning the loop"
    assert BLOCKED in stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_run_whose_loop_is_blocked_and_whose_sync_check_is_stuck(
        checks_dir, tmp_path: Path, sig: signal.Signals) -> None:
    go_async, go_sync = tmp_path / "async", tmp_path / "sync"
    directory = checks_dir(check_s=f'''
import asyncio, threading, time
from pathlib import Path
from mgn_verify import check
@check(id="s.quick")
def check_quick(): pass
@check(id="s.stuck_sync", timeout=600)
def check_stuck_sync():
    Path({str(go_sync)!r}).write_text("go")
    threading.Event().wait()
@check(id="s.blocks_loop", timeout=600)
async def check_blocks_loop():
    while not Path({str(go_sync)!r}).exists():  # the others get going before the loop blocks
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    Path({str(go_async)!r}).write_text("go")
    time.sleep(600)
@check(id="s.after", requires=["s.stuck_sync"])
def check_after(): pass
''')
    proc, report, junit = _start(directory, tmp_path)
    wait_for_file(go_async, proc)
    wait_for_file(go_sync, proc)
    signalled = time.monotonic()
    proc.send_signal(sig)
    if sig == signal.SIGINT:  # an impatient second Ctrl-C must not produce a traceback either
        time.sleep(0.2)
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 6
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = _complete_reports(report, junit)
    assert data["run"]["interrupted"] is True
    statuses = {r["id"]: (r["status"], r["message"].split(" after")[0]) for r in data["results"]}
    assert statuses == {
        "s.quick": ("pass", ""), "s.stuck_sync": ("error", "interrupted"),
        "s.blocks_loop": ("error", "interrupted"), "s.after": ("skip", "not run: interrupted"),
    }
    assert "Exit 130" in stdout


def _hanging_teardown(checks_dir: Callable[..., Path], tearing: Path) -> Path:
    return checks_dir(check_t=f'''
import time
from pathlib import Path
from mgn_verify import check, fixture
@fixture
def sticky():
    yield 1
    Path({str(tearing)!r}).write_text("tearing down")
    time.sleep(600)
@check(id="t.uses")
def check_uses(sticky): pass
''')


def test_ctrl_c_stops_waiting_for_a_hanging_teardown_at_once(checks_dir, tmp_path: Path) -> None:
    tearing = tmp_path / "tearing"
    proc, report, junit = _start(_hanging_teardown(checks_dir, tearing), tmp_path, "--timeout", "600")
    wait_for_file(tearing, proc)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 6
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = _complete_reports(report, junit)
    assert data["summary"]["errors"] == ["fixture 'sticky' teardown interrupted"]
    assert [r["status"] for r in data["results"]] == ["pass"]


def test_a_hanging_teardown_is_bounded_by_its_timeout_and_is_a_framework_error(mgn, checks_dir,
                                                                               tmp_path: Path) -> None:
    run = mgn("verify", "--checks-dir", str(_hanging_teardown(checks_dir, tmp_path / "tearing")), *ISOLATED,
              "--timeout", "0.5")
    assert run.report["summary"]["errors"] == ["fixture 'sticky' teardown timed out after 0.5 s"]
    assert run.statuses == {"t.uses": "pass"}
    assert run.exit_code == 2 == run.report["summary"]["exit_code"]


def test_the_run_deadline_ends_the_run_gracefully(checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_d='''
import asyncio, time
from mgn_verify import check
@check(id="d.quick")
def check_quick(): pass
@check(id="d.slow_sync", timeout=60)
def check_slow_sync(): time.sleep(60)
@check(id="d.slow_async", timeout=60)
async def check_slow_async(): await asyncio.sleep(60)
@check(id="d.after", requires=["d.slow_sync"])
def check_after(): pass
''')
    started = time.monotonic()
    proc, report, junit = _start(directory, tmp_path, "--set", "verify.run_deadline=1")
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - started < 8
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    data = _complete_reports(report, junit)
    results = {r["id"]: r for r in data["results"]}
    assert results["d.quick"]["status"] == "pass"
    for cid in ("d.slow_sync", "d.slow_async"):
        assert results[cid]["status"] == "error"
        assert results[cid]["message"].startswith("the run deadline of 1 s passed"), results[cid]
    assert results["d.after"]["status"] == "skip"
    assert results["d.after"]["message"] == "not run: the run deadline of 1 s passed"
    assert data["summary"]["errors"] == \
        ["the run deadline of 1 s passed while d.slow_async, d.slow_sync were running; the run was stopped"]
    assert data["run"]["interrupted"] is False
    assert "mgn: error: the run deadline of 1 s passed" in stderr


def test_a_check_holding_the_interpreter_is_killed_by_the_watchdog(mgn_process, checks_dir) -> None:
    directory = checks_dir(check_h='''
import re
from mgn_verify import check
@check(id="h.regex", timeout=1)
def check_regex(): re.match(r'(a+)+$', 'a' * 40 + 'b')
''')
    started = time.monotonic()
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--set", "verify.run_deadline=1",
                       timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode == -signal.SIGKILL
    assert proc.stderr.splitlines() == ["mgn: error: run deadline of 1 s exceeded while h.regex was running "
                                        "(it holds the interpreter); stopping"]


def test_the_watchdog_does_not_outlive_a_killed_run(checks_dir, tmp_path: Path) -> None:
    go = tmp_path / "go"
    directory = checks_dir(check_k=f'''
import time
from pathlib import Path
from mgn_verify import check
@check(id="k.slow", timeout=60)
def check_slow():
    Path({str(go)!r}).write_text("go")
    time.sleep(60)
''')
    proc, _, _ = _start(directory, tmp_path)
    wait_for_file(go, proc)
    children = _children(proc.pid)
    assert children, "no watchdog process"
    proc.kill()
    proc.communicate(timeout=10)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in children),
               timeout=5, what="the watchdog ending with the run")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_isolate_turns_an_interpreter_holding_check_into_a_timeout(checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_i='''
import re
from mgn_verify import check, fixture
@fixture
def shared():
    return {"made_in": "parent"}
@check(id="i.regex", timeout=1)
def check_regex(): re.match(r'(a+)+$', 'a' * 40 + 'b')
@check(id="i.ok", timeout=5)
def check_ok(shared):
    print("hello from the child")
    return {"message": "fine", "made_in": shared["made_in"], "odd": lambda: 1}
@check(id="i.fails")
def check_fails(): assert 1 == 2, "one is not two"
@check(id="i.after", requires=["i.regex"])
def check_after(): pass
''')
    started = time.monotonic()
    proc, report, junit = _start(directory, tmp_path, "--isolate")
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - started < 8
    assert proc.returncode == 1, stderr
    data = _complete_reports(report, junit)
    results = {r["id"]: r for r in data["results"]}
    assert results["i.regex"]["status"] == "error"
    assert results["i.regex"]["message"] == "timed out after 1.0 s; its isolated process was killed"
    assert results["i.ok"]["status"] == "pass"
    assert results["i.ok"]["message"] == "fine"
    assert results["i.ok"]["details"]["made_in"] == "parent"
    assert results["i.ok"]["details"]["odd"].startswith("<function check_ok.<locals>.<lambda> at")
    assert results["i.ok"]["output"] == "hello from the child\n"
    assert results["i.fails"]["status"] == "fail"
    assert results["i.fails"]["message"] == "one is not two\nassert 1 == 2"  # rewritten in the child too
    assert results["i.after"]["status"] == "blocked"


def test_a_raising_hook_is_a_framework_error_with_a_redacted_message(mgn, checks_dir) -> None:
    token = "tok-3f9a8b7c6d5e"
    directory = checks_dir(check_h='''
import os
def check_ok(): pass
def mgn_run_start(plan):
    raise RuntimeError("cannot reach api with " + os.environ["MGN_API_TOKEN"] + "\\nsecond line")
def mgn_result(result):
    raise ValueError("reporter broke")
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, env={"MGN_API_TOKEN": token})
    assert run.exit_code == 2
    assert run.report["summary"]["exit_code"] == 2
    assert run.report["summary"]["errors"] == [
        "hook mgn_run_start raised RuntimeError: cannot reach api with ***",
        "hook mgn_result raised ValueError: reporter broke",
    ]
    assert token not in run.stdout + run.stderr + json.dumps(run.report)
    assert "mgn: error: hook mgn_run_start raised RuntimeError: cannot reach api with ***" in run.stderr

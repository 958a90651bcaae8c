"""Running: concurrency, blocking and skip propagation, timeouts, retries, fail-fast, --wait."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ISOLATED


def test_ready_checks_run_concurrently(mgn, checks_dir) -> None:
    # Both checks wait on one barrier: they pass only if they run at the same time.
    directory = checks_dir(check_c='''
import threading, asyncio
from mgn_verify import check
BARRIER = threading.Barrier(3, timeout=10)
@check(id="c.sync1")
def check_one(): BARRIER.wait()
@check(id="c.sync2")
def check_two(): BARRIER.wait()
@check(id="c.async")
async def check_three(): await asyncio.get_running_loop().run_in_executor(None, BARRIER.wait)
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--concurrency", "3")
    assert run.statuses == {"c.sync1": "pass", "c.sync2": "pass", "c.async": "pass"}, run.report["results"]


def test_blocked_names_root_causes_and_skip_propagates(mgn, checks_dir) -> None:
    directory = checks_dir(check_c='''
from mgn_verify import check, skip
@check(id="c.root1")
def check_r1(): assert False, "down"
@check(id="c.root2")
def check_r2(): raise OSError("broken")
@check(id="c.mid", requires=["c.root1"])
def check_mid(): pass
@check(id="c.leaf", requires=["c.mid", "c.root2", "c.ok"])
def check_leaf(): pass
@check(id="c.ok")
def check_ok(): pass
@check(id="c.alone")
def check_alone(): assert False, "nothing depends on me"
@check(id="c.na")
def check_na(): skip("no GPU")
@check(id="c.after_na", requires=["c.na"])
def check_after_na(): pass
@check(id="c.after_after_na", requires=["c.after_na"])
def check_after_after_na(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.result("c.mid")["status"] == "blocked"
    assert run.result("c.leaf")["blocked_by"] == ["c.root1", "c.root2"]
    assert run.result("c.leaf")["message"] == "blocked by c.root1 (fail), c.root2 (error)"
    assert run.result("c.after_after_na")["status"] == "skip"
    assert run.result("c.after_na")["message"] == "not applicable: requires c.na which was skipped"
    causes = {c["id"]: c["blocks"] for c in run.report["summary"]["root_causes"]}
    # A failure that blocks nothing is a root cause too: nothing else explains it.
    assert causes == {"c.root1": ["c.mid", "c.leaf"], "c.root2": ["c.leaf"], "c.alone": []}
    assert "  ✗ c.alone (fail)\n" in run.stdout


def test_hanging_sync_and_async_checks_time_out_and_the_run_goes_on(mgn_process, checks_dir, tmp_path) -> None:
    directory = checks_dir(check_h='''
import time, asyncio
from mgn_verify import check
@check(id="h.sync", timeout=0.3)
def check_sync(): time.sleep(3600)
@check(id="h.async", timeout=0.3)
async def check_async(): await asyncio.sleep(3600)
@check(id="h.after", requires=["h.sync"])
def check_after(): pass
@check(id="h.other")
def check_other(): pass
''')
    report = tmp_path / "r.json"
    # A stuck thread must not hold the process open: the subprocess timeout is the hang detector.
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--concurrency", "1",
                       "--json", str(report), timeout=30)
    assert proc.returncode == 3, proc.stderr
    import json
    results = {r["id"]: r for r in json.loads(report.read_text())["results"]}
    assert results["h.sync"]["message"] == "timed out after 0.3 s"
    assert results["h.async"]["message"] == "timed out after 0.3 s"
    assert results["h.after"]["status"] == "blocked"
    assert results["h.other"]["status"] == "pass"   # the pool replaced the stuck worker


def test_retries_with_backoff(mgn, checks_dir, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    directory = checks_dir(check_r=f'''
from pathlib import Path
from mgn_verify import check
COUNTER = Path({str(counter)!r})
@check(id="r.flaky", retries=3, retry_delay=0.01)
def check_flaky():
    n = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(n))
    assert n >= 3, f"attempt {{n}}"
@check(id="r.never", retries=2, retry_delay=0.01)
def check_never(): assert False, "always"
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.result("r.flaky")["status"] == "pass"
    assert run.result("r.flaky")["attempts"] == 3
    assert run.result("r.never")["attempts"] == 3
    assert run.result("r.never")["status"] == "fail"


def test_wait_reruns_until_the_check_passes(mgn, checks_dir, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    directory = checks_dir(check_w=f'''
from pathlib import Path
from mgn_verify import check
COUNTER = Path({str(counter)!r})
@check(id="w.converges", retry_delay=0.01)
def check_converges():
    n = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(n))
    assert n >= 3, "not converged yet"
@check(id="w.dependent", requires=["w.converges"])
def check_dependent(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--wait", "30s")
    assert run.statuses == {"w.converges": "pass", "w.dependent": "pass"}
    assert run.result("w.converges")["attempts"] == 3
    assert run.exit_code == 0


def test_fail_fast_stops_scheduling(mgn, checks_dir) -> None:
    directory = checks_dir(check_f='''
from mgn_verify import check
@check(id="f.a_first")
def check_first(): assert False, "boom"
@check(id="f.b_second", requires=["f.a_first"])
def check_second(): pass
@check(id="f.c_third", requires=["f.a_first"])
def check_third(): pass
@check(id="f.z_later")
def check_later(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-x", "--concurrency", "1")
    assert run.result("f.a_first")["status"] == "fail"
    assert run.result("f.z_later")["status"] == "skip"
    assert run.result("f.z_later")["message"] == "not run: --fail-fast stopped the run after f.a_first fail"
    assert len(run.report["results"]) == 4


def test_report_order_is_deterministic_whatever_the_finish_order(mgn, checks_dir) -> None:
    directory = checks_dir(check_o='''
import time
from mgn_verify import check
@check(id="o.a")
def check_a(): time.sleep(0.05)
@check(id="o.b")
def check_b(): pass
@check(id="o.c", requires=["o.b"])
def check_c(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert [r["id"] for r in run.report["results"]] == ["o.a", "o.b", "o.c"]

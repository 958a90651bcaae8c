"""Every status, produced by real checks through the real CLI."""

from __future__ import annotations

from tests.helpers import ISOLATED

SOURCE = '''
import asyncio
from mgn_verify import check, skip, warn

@check(id="s.pass")
def check_pass(): return {"message": "all good"}

@check(id="s.details")
def check_details(): return {"message": "3 nodes", "nodes": 3}

@check(id="s.fail")
def check_fail(): assert 1 > 2, "one is not greater than two"

@check(id="s.fail_bare")
def check_fail_bare():
    nodes = 1
    assert nodes >= 3

@check(id="s.warn_severity", severity="warning")
def check_warn_severity(): assert False, "soft problem"

@check(id="s.info", severity="info")
def check_info(): assert False, "just so you know"

@check(id="s.warn_call")
def check_warn_call(): warn("explicit warning")

@check(id="s.error")
def check_error(): raise ConnectionRefusedError("port 6443 refused")

@check(id="s.systemexit")
def check_systemexit(): raise SystemExit(3)

@check(id="s.skip")
def check_skip(): skip("not on this host")

@check(id="s.blocked", requires=["s.fail"])
def check_blocked(): pass

@check(id="s.waived")
def check_waived(): assert False, "known issue"

@check(id="s.async_pass")
async def check_async_pass():
    await asyncio.sleep(0)
    return {"message": "async ok"}

@check(id="s.async_fail")
async def check_async_fail():
    await asyncio.sleep(0)
    assert False, "async failure"
'''


def test_every_status(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_s=SOURCE)), *ISOLATED,
              "--ignore-preflight-errors", "s.waived")
    assert run.statuses == {
        "s.pass": "pass", "s.details": "pass", "s.fail": "fail", "s.fail_bare": "fail",
        "s.warn_severity": "warn", "s.info": "warn", "s.warn_call": "warn", "s.error": "error",
        "s.systemexit": "error", "s.skip": "skip", "s.blocked": "blocked", "s.waived": "waived",
        "s.async_pass": "pass", "s.async_fail": "fail",
    }
    assert run.result("s.pass")["message"] == "all good"
    assert run.result("s.details")["message"] == "3 nodes"
    assert run.result("s.details")["details"] == {"nodes": 3}
    # a check file's asserts are rewritten by pytest's rewriter: the message explains itself
    assert run.result("s.fail")["message"] == "one is not greater than two\nassert 1 > 2"
    assert run.result("s.fail_bare")["message"] == "assert 1 >= 3"
    assert run.result("s.error")["message"] == "ConnectionRefusedError: port 6443 refused"
    assert run.result("s.systemexit")["message"] == "SystemExit: 3"
    assert run.result("s.skip")["message"] == "not on this host"
    assert run.result("s.blocked")["blocked_by"] == ["s.fail"]
    assert run.result("s.blocked")["attempts"] == 0
    assert run.result("s.waived")["message"].startswith("would be fail: known issue")
    assert run.result("s.waived")["waiver"]["source"] == "cli"
    assert run.exit_code == 1


def test_console_shows_details_only_for_problems(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_s=SOURCE)), *ISOLATED, report=False)
    assert "all good" not in run.stdout          # pass messages only with -v
    assert "one is not greater than two" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert "Root causes (fix these first):" in run.stdout
    assert "s.fail (fail) blocks 1: s.blocked" in run.stdout
    assert "Exit 1: at least one check failed" in run.stdout
    verbose = mgn("verify", "--checks-dir", str(checks_dir(check_s=SOURCE)), *ISOLATED, "-v", report=False)
    assert "all good" in verbose.stdout

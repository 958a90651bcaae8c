"""``pytest --mgn-verify=SELECTION``: mgn checks as pytest items, run as mgn runs them, each
reporting its own outcome; pytest's -k, -x, -rs and --junitxml keep working (real pytest runs)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from tests.helpers import JUNIT_XSD, wait_for_file

pytest_plugins = ["pytester"]

TOKEN = "tok-5ecret-9f8e7d"

CHECKS = '''
from pathlib import Path
import time
from mgn_verify import check, skip, warn

def _wait_for(name):  # each of t.one / t.two waits for the other: they pass only when run at once
    deadline = time.monotonic() + 10
    while not Path(name).exists():
        assert time.monotonic() < deadline, f"{name} never appeared: not run concurrently"
        time.sleep(0.01)

@check(id="t.dep")
def check_dep(): Path("dep.txt").write_text("written by t.dep")
@check(id="t.uses", requires=["t.dep"])
def check_uses(): assert Path("dep.txt").read_text() == "written by t.dep"
@check(id="t.one")
def check_one():
    Path("one.started").touch()
    _wait_for("two.started")
@check(id="t.two")
def check_two():
    Path("two.started").touch()
    _wait_for("one.started")
@check(id="t.fail", remediation="add a node")
def check_fail():
    assert False, "nodes = 2, need 3"
@check(id="t.blocked", requires=["t.fail"])
def check_blocked(): pass
@check(id="t.warn", severity="warning")
def check_warn(config): warn(f"token {config['api.token']} expires soon")
@check(id="t.skip")
def check_skip(): skip("not on this host")
@check(id="t.waived")
def check_waived(): assert False, "disk is slow"
'''


@pytest.fixture(scope="module", autouse=True)
def _engine_loaded() -> None:
    """Load the engine and the built-in plugins once in this process: pytester's in-process runs
    drop the modules first imported inside them (re-importing them each run is slow, and
    mgn_verify would keep public names such as ``skip`` it had resolved from dropped modules)."""
    import mgn_verify._runner  # noqa: F401  (the run's modules)
    from mgn_verify._session import Session

    Session({"MGN_CONFIG": os.devnull}, lambda _: None).load(plugins=[], checks_dirs=[], config_path=os.devnull,
                                                             settings={})


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("MGN_CONFIG", os.devnull)  # no user config
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "check_t.py").write_text(textwrap.dedent(CHECKS))
    pytester.makefile(".yaml", mgn="verify:\n  waivers:\n    - id: t.waived\n      reason: known slow disk (OPS-7)\n"
                                   "    - id: t.gone\n      reason: removed check\n")
    return pytester


def line_of(check_id: str) -> int:
    """The line of the check's decorator in check_t.py (where its function's code starts)."""
    lines = textwrap.dedent(CHECKS).splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(f'@check(id="{check_id}"'))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # -W default: this suite's filterwarnings=error must not reach the inner run; hypothesis's
    # plugin would import hypothesis again in every inner run (seconds each).
    return pytester.runpytest_inprocess("-W", "default", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                                        "--mgn-checks-dir=checks", *args)


def test_outcomes_order_and_junit(project: pytest.Pytester) -> None:
    junit = project.path / "preflight.xml"
    result = run(project, "--mgn-verify=t", "--mgn-config=mgn.yaml", f"--mgn-set=api.token={TOKEN}",
                 "-v", "-rsx", f"--junitxml={junit}")
    result.assert_outcomes(passed=5, failed=1, skipped=2, xfailed=1, warnings=2)
    out = result.stdout.str()
    # Report order: a check after what it requires; the run is mgn's (t.one and t.two overlapped).
    items = re.findall(r"^mgn-verify::(\S+) (\w+)", out, re.MULTILINE)
    assert [cid for cid, _ in items].index("t.dep") < [cid for cid, _ in items].index("t.uses")
    assert dict(items) == {"t.dep": "PASSED", "t.fail": "FAILED", "t.one": "PASSED", "t.skip": "SKIPPED",
                           "t.two": "PASSED", "t.waived": "XFAIL", "t.warn": "PASSED", "t.blocked": "SKIPPED",
                           "t.uses": "PASSED"}
    # A failure is mgn's words: status, message, remediation; no traceback of our code.
    result.stdout.fnmatch_lines(["*_ check t.fail _*", "fail: nodes = 2, need 3",
                                 "remediation: add a node"])
    result.stdout.fnmatch_lines([  # a skip is located at the check (the check's path:line)
        f"SKIPPED [1] checks/check_t.py:{line_of('t.blocked')}: t.blocked: blocked by t.fail: nodes = 2, need 3",
        f"SKIPPED [1] checks/check_t.py:{line_of('t.skip')}: t.skip: not on this host",
        "XFAIL mgn-verify::t.waived - waived: known slow disk (OPS-7)",
    ])
    result.stdout.fnmatch_lines(["mgn-verify::t.warn", "*MgnCheckWarning: token *** expires soon"])
    result.stdout.fnmatch_lines(["*MgnRunWarning: mgn: warning: verify.waivers 't.gone' matches no check*"])
    assert "Traceback" not in out and "_verify_run" not in out and "verify_items" not in out
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(junit))
    doc: Any = schema.to_dict(str(junit))
    cases = {case["@name"]: case for case in doc["testsuite"][0]["testcase"]}
    assert cases["t.fail"]["failure"][0]["@message"].startswith("fail: nodes = 2")
    assert cases["t.blocked"]["skipped"][0]["@message"].startswith("t.blocked: blocked by t.fail")
    where = f"{project.path / 'checks' / 'check_t.py'}:{line_of('t.blocked')}"
    assert cases["t.blocked"]["skipped"][0]["$"] == f"{where}: t.blocked: blocked by t.fail: nodes = 2, need 3"
    assert TOKEN not in out + result.stderr.str() + junit.read_text()


def test_deselection_and_exitfirst(project: pytest.Pytester) -> None:
    # -k: only t.uses is an item; mgn still runs what it requires first (t.dep wrote the file).
    junit = project.path / "xunit1.xml"
    result = run(project, "--mgn-verify=t", "-k", "uses", f"--junitxml={junit}", "-o", "junit_family=xunit1")
    result.assert_outcomes(passed=1)
    assert "8 deselected" in result.stdout.str()
    assert '<property name="mgn_layer" value="t" /><property name="mgn_severity" value="critical" />' in \
        junit.read_text()  # xunit2 (the default) has no per-test properties
    assert (project.path / "dep.txt").exists() and not (project.path / "one.started").exists()
    # -x: mgn's --fail-fast; pytest stops after the first failing item.
    result = run(project, "--mgn-verify=t.fail,t.dep,t.skip", "-x")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_a_failed_requirement_outside_the_selection_fails_the_session(project: pytest.Pytester) -> None:
    """-k leaves t.blocked, skipped: t.fail ran only as its requirement, yet failed, as
    ``mgn verify --check t.blocked`` exits 1; so pytest must not exit 0."""
    result = run(project, "--mgn-verify=t", "-k", "blocked or dep", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= mgn-verify: required checks failed outside the selection =*",
                                 "t.fail (fail): nodes = 2, need 3"])
    assert "t.dep (" not in result.stdout.str()  # a requirement that passed is not listed
    (project.path / "checks" / "check_w.py").write_text(
        "from mgn_verify import check\n@check(id='w.after', requires=['t.waived'])\ndef check_after(): pass\n")
    waived = run(project, "--mgn-verify=w", "--mgn-config=mgn.yaml", "-k", "after")
    waived.assert_outcomes(passed=1)  # t.waived ran (deselected) and is waived: not a failure
    assert waived.ret == pytest.ExitCode.OK
    assert "outside the selection" not in waived.stdout.str()


def test_collect_only_runs_nothing_and_a_suite_runs_both(project: pytest.Pytester) -> None:
    project.makepyfile(test_app="def test_app_still_works():\n    assert sum([1, 2]) == 3\n")
    collected = run(project, "--mgn-verify=t.uses,t.skip", "--collect-only", "-q")
    collected.stdout.fnmatch_lines(["mgn-verify::t.dep", "mgn-verify::t.skip", "mgn-verify::t.uses",
                                    "test_app.py::test_app_still_works"])
    assert not (project.path / "dep.txt").exists()  # listed, not run
    run(project, "test_app.py", "--mgn-verify=t.uses,t.skip").assert_outcomes(passed=3, skipped=1)
    by_marker = run(project, "test_app.py", "--mgn-verify=t.uses", "-m", "not mgn_verify")
    by_marker.assert_outcomes(passed=1)


def test_errors_are_one_collection_or_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--mgn-verify=t,nope")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["ERROR mgn-verify - mgn: error: unknown layer 'nope';*known layers:*"])
    (project.path / "checks" / "check_broken.py").write_text("raise RuntimeError('half-written check')\n")
    result = run(project, "--mgn-verify=t")
    result.stdout.fnmatch_lines(["mgn: error: *check_broken.py*RuntimeError: half-written check*"])
    assert "Traceback" not in result.stdout.str()
    result = run(project, "--mgn-verify=t", "--mgn-set", "api.token")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mgn-set expects KEY=VALUE, got 'api.token' (no '=')"])
    result = run(project, "--mgn-verify=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mgn-verify needs a SELECTION*"])


def test_run_warnings_and_errors_fail_the_session_not_an_item(project: pytest.Pytester) -> None:
    """-W error turns the run's warning (the waiver of no check) into a session failure, not the
    failure of the item that happened to run mgn; an error of the run (a raising hook) makes
    ``mgn verify`` exit 2 and fails the session too."""
    (project.path / "checks" / "check_hook.py").write_text(
        "def mgn_run_finish(report):\n    raise RuntimeError('finish hook broke')\n")
    result = run(project, "--mgn-verify=t.dep", "--mgn-config=mgn.yaml", "-W", "error", "-v")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["mgn-verify::t.dep PASSED*", "*= mgn-verify: the mgn run failed =*",
                                 "mgn: error: *finish hook broke*",
                                 "mgn: warning: verify.waivers 't.gone' matches no check*"])
    result = run(project, "--mgn-verify=t.dep")  # no waiver, no -W error: the hook's error alone
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["mgn: error: *finish hook broke*"])


def test_a_crashed_run_fails_each_item_once_and_redacted_ids_stay_unique(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.path / "checks" / "check_s.py").write_text(textwrap.dedent(f'''
        from mgn_verify import check, parametrize
        @parametrize("tok", [{TOKEN!r}, "pw-0ther-5ecret"])
        @check(id="s.login")
        def check_login(tok): pass
    '''))
    calls: list[None] = []
    hostname = socket.gethostname

    def no_hostname() -> str:  # once t.dep has run: an OSError escaping the run (a crash), not a check's
        if not (project.path / "dep.txt").exists():
            return hostname()
        calls.append(None)
        raise OSError(f"no hostname for {TOKEN}")

    monkeypatch.setattr(socket, "gethostname", no_hostname)
    result = run(project, "--mgn-verify=s,t.dep", f"--mgn-set=api.token={TOKEN}",
                 "--mgn-set=rethinkdb.password=pw-0ther-5ecret", "-v")
    result.assert_outcomes(failed=3)
    assert len(calls) == 1  # one run, not one per item
    out = result.stdout.str()
    assert TOKEN not in out and "pw-0ther-5ecret" not in out
    assert "mgn-verify::s.login[***] FAILED" in out and "mgn-verify::s.login[***]#2 FAILED" in out
    failures = out.split("short test summary info")[0]  # (with CI set, the summary repeats each message)
    assert failures.count("mgn: error: the mgn run crashed: OSError: no hostname for ***") == 3
    assert failures.count("Traceback (most recent call last)") == 1  # on the item that ran it


def test_xdist_is_refused(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = run(project, "--mgn-verify=t", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --mgn-verify cannot run under pytest-xdist (-n)*"])


def test_entry_point_and_ctrl_c(pytester: pytest.Pytester) -> None:
    """A real pytest process (the installed pytest11 entry point, no -p): Ctrl-C during the mgn
    run cancels its checks and ends pytest as any KeyboardInterrupt does."""
    checks = pytester.mkdir("checks")
    (checks / "check_i.py").write_text(textwrap.dedent('''
        import asyncio
        from pathlib import Path
        from mgn_verify import check
        @check(id="i.slow", timeout=600)
        async def check_slow():
            Path("started").write_text("go")
            await asyncio.sleep(600)
    '''))
    env = {**os.environ, "MGN_CONFIG": os.devnull, "PYTEST_ADDOPTS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                             "--mgn-verify=i",
                             "--mgn-checks-dir=checks"], cwd=pytester.path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_file(Path(pytester.path) / "started", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "collected 1 item" in out and "KeyboardInterrupt" in out and "Traceback" not in out

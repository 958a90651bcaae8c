"""Issue 9 review (R2): one report per destination, an exit code decided once and stated by every
report written, errors that join the report late redacted too, and Ctrl-C/SIGTERM at any moment
of ``mgn verify`` ending in exit 130 with complete reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD

TOKEN = "tok-5e4d3c2b1a0f"

#: A reporter (``-o crash``) whose rendering fails with the token in its message.
CRASHING_REPORTER = '''
import os
def check_ok(): pass
def mgn_register_reporters(reporters):
    class Crash:
        def __init__(self, context): pass
        def render(self, report): raise RuntimeError("cannot render for " + os.environ["MGN_API_TOKEN"])
    reporters.add("crash", Crash)
'''


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# -- one report per destination --------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["-o", "json", "--json", "-", "--junit", "-"],
    ["-o", "json", "-o", "junit"],
    ["-o", "console", "--json", "-"],
    ["-o", "json", "--junit", "/dev/stdout"],
    ["--json", "-", "--junit", "/dev/fd/1"],
])
def test_two_reports_on_stdout_are_a_usage_error_before_anything_runs(mgn, checks_dir, tmp_path: Path,
                                                                     args: list[str]) -> None:
    ran = tmp_path / "ran"
    directory = checks_dir(check_m=f'''
from pathlib import Path
def check_marker(): Path({str(ran)!r}).write_text("x")
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, *args, report=False)
    assert run.exit_code == 2
    assert "stdout" in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not ran.exists()
    if run.stdout:  # the first stdout report (if machine-readable) still says why nothing ran
        document = run.stdout.lstrip()
        assert json.loads(document)["summary"]["exit_code"] == 2 if document.startswith("{") \
            else document.startswith("<?xml") and document.count("<?xml") == 1


def test_one_report_on_stdout_and_others_in_files_still_work(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_ok="def check_ok(): pass\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", "-", "--junit", str(tmp_path / "j.xml"),
              report=False)
    assert run.exit_code == 0, run.stderr
    assert strict_json(run.stdout)["summary"]["exit_code"] == 0


# -- errors that join the report late: redacted, and stated by every report written -----------------

def test_a_reporter_crash_is_redacted_and_in_the_files_with_the_final_exit_code(mgn, checks_dir,
                                                                                tmp_path: Path) -> None:
    directory = checks_dir(check_c=CRASHING_REPORTER)
    out, junit = tmp_path / "r.json", tmp_path / "r.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "crash", "--json", str(out),
              "--junit", str(junit), report=False, env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 2
    data = strict_json(out.read_text())
    assert data["summary"]["exit_code"] == 2
    assert "reporter 'crash' failed: RuntimeError: cannot render for ***" in data["summary"]["errors"]
    assert "cannot render for ***" in junit.read_text()
    assert TOKEN not in out.read_text() + junit.read_text() + run.stdout + run.stderr


def test_a_report_write_error_is_redacted_and_in_the_other_files(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_ok="def check_ok(): pass\n")
    (tmp_path / TOKEN).write_text("a file, not a directory")
    out, junit = tmp_path / "r.json", tmp_path / TOKEN / "r.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(out), "--junit", str(junit),
              report=False, env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 2
    data = strict_json(out.read_text())
    assert data["summary"]["exit_code"] == 2
    assert any("r.xml" in error and "***" in error for error in data["summary"]["errors"]), data["summary"]
    assert TOKEN not in out.read_text() + run.stdout + run.stderr


#: A check that interrupts its own run (as Ctrl-C would) once it is running.
SELF_INTERRUPTING = '''
import os, signal, time
def check_interrupts():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
'''


def test_an_interrupted_run_stays_130_when_a_report_fails(mgn_process, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_i=SELF_INTERRUPTING, check_c=CRASHING_REPORTER)
    (tmp_path / "not-a-dir").write_text("x")
    out = tmp_path / "r.json"
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "crash", "--json", str(out),
                       "--junit", str(tmp_path / "not-a-dir" / "r.xml"), env={"MGN_API_TOKEN": TOKEN})
    assert proc.returncode == 130, proc.stderr
    data = strict_json(out.read_text())
    assert data["run"]["interrupted"] is True and data["summary"]["exit_code"] == 130
    errors = " | ".join(data["summary"]["errors"])
    assert "reporter 'crash' failed" in errors and "r.xml" in errors
    assert "Traceback" not in proc.stderr


# -- Ctrl-C and SIGTERM at any moment --------------------------------------------------------------

def signalling(where: str, sig: int) -> str:
    """Check-file source whose plugin sends ``sig`` to its own process at ``where``."""
    return f'''
import os, time
def check_ok():
    if {where!r} == "factory": time.sleep(30)  # ends at once only if the run was told to stop
def _signal(): os.kill(os.getpid(), {int(sig)})
def mgn_register_reporters(reporters):
    class Sig:
        def __init__(self, context):
            if {where!r} == "factory": _signal()
        def render(self, report):
            if {where!r} == "render": _signal()
            return "sig-report exit=" + str(int(report.exit_code)) + "\\n"
    reporters.add("sig", Sig)
def mgn_run_finish(report):
    if {where!r} == "run_finish": _signal()
'''


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("where", ["factory", "run_finish", "render"])
def test_a_signal_before_or_after_the_run_ends_in_130_with_complete_reports(mgn_process, checks_dir, tmp_path: Path,
                                                                           where: str, sig: int) -> None:
    directory = checks_dir(check_s=signalling(where, sig))
    out, junit = tmp_path / "r.json", tmp_path / "r.xml"
    started = time.monotonic()
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "sig", "--json", str(out),
                       "--junit", str(junit), "--timeout", "60")
    assert time.monotonic() - started < 20
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    data = strict_json(out.read_text())
    assert data["run"]["interrupted"] is True and data["summary"]["exit_code"] == 130
    assert not any("hook" in error for error in data["summary"]["errors"]), data["summary"]["errors"]
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))
    assert proc.stdout == "sig-report exit=130\n"
    statuses = [(r["id"], r["status"], r["message"].split(" after")[0]) for r in data["results"]]
    if where == "factory":  # before the run: the run is stopped as soon as it starts
        assert statuses == [("s.ok", "error", "interrupted")]
    else:  # after the run: its results are complete
        assert statuses == [("s.ok", "pass", "")]


def test_a_signal_while_a_report_is_written_lets_it_finish(checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_big='def check_big(): return {"rows": ["x" * 10_000] * 50}\n')
    fifo, junit = tmp_path / "r.fifo", tmp_path / "r.xml"
    os.mkfifo(fifo)
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(fifo), "--junit", str(junit), "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(60, proc.kill)  # never hang the suite
    timer.start()
    try:
        with open(fifo, encoding="utf-8") as reader:  # the report (500 KB) fills the pipe: the writer blocks
            first = reader.read(1)
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            text = first + reader.read()
        _, stderr = proc.communicate(timeout=30)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert strict_json(text)["results"][0]["status"] == "pass"  # complete, not cut mid-write
    assert "interrupted" in junit.read_text()  # a regular file states how the process ended

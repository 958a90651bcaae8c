"""Issue 9, "Reports are written safely": strict JSON whatever a check returns, report files that
follow symlinks, leave devices alone and honour the umask, a clean stdout in machine-readable
modes, reports even when loading fails or is interrupted, and a console no check can drive."""

from __future__ import annotations

import ast
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD, REPO, REPORT_SCHEMA

OK = "def check_ok(): pass\n"


def strict_json(text: str) -> Any:
    """RFC 8259 only: NaN, Infinity and -Infinity are refused."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def validate(report: dict[str, Any]) -> None:
    jsonschema.validate(report, json.loads(REPORT_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


# -- A: the JSON report is strict JSON whatever a check returns ---------------------------------

WEIRD = '''
import math
from mgn_verify import check

class Big:
    def __repr__(self): return "Big(" + "x" * 100_000 + ")"

class Broken:
    def __repr__(self): raise RuntimeError("no repr today")

def nest(n):
    value = "bottom"
    for _ in range(n):
        value = [value]
    return value

@check(id="w.weird")
def check_weird():
    loop = {"name": "loop"}
    loop["self"] = loop
    chain = [1]
    chain.append(chain)
    return {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "bytes": b"\\xff\\x00abc",
            "set": {3, 1, 2}, "tuple": (1, "a"), "loop": loop, "chain": chain, "big": Big(),
            "broken": Broken(), 5: "int key", (1, 2): "tuple key", "deep": nest(500),
            "long": "y" * 1_000_000, "many": list(range(100_000))}

@check(id="w.nan_message")
def check_nan_message():
    return {"message": "fine", "ratio": float("nan")}
'''


def test_json_report_is_strict_json_whatever_details_hold(mgn, checks_dir, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    run = mgn("verify", "--checks-dir", str(checks_dir(check_w=WEIRD)), *ISOLATED, "--json", str(out))
    assert run.exit_code == 0, run.stderr
    data = strict_json(out.read_text())
    validate(data)
    details = next(r for r in data["results"] if r["id"] == "w.weird")["details"]
    # Non-finite numbers become the strings Python and JavaScript print for them.
    assert (details["nan"], details["inf"], details["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert details["bytes"] == "\\xff\x00abc"                   # undecodable bytes escaped, never lost
    assert details["set"] == [1, 2, 3] and details["tuple"] == [1, "a"]
    assert details["loop"] == {"name": "loop", "self": "<cycle>"}
    assert details["chain"] == [1, "<cycle>"]
    assert details["big"].startswith("Big(xxx") and len(details["big"]) < 5_000
    assert details["broken"] == "<unrepresentable Broken>"
    assert details["5"] == "int key" and details["(1, 2)"] == "tuple key"
    assert len(details["long"]) < 20_000 and details["long"].endswith("more characters)")
    assert len(details["many"]) <= 1_001 and details["many"][-1].endswith("more items)")
    depth, node = 0, details["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert depth < 100 and node == "<too deep>"
    assert len(out.read_text()) < 2_000_000  # bounded: a check cannot make the report unbounded


def test_stdout_json_is_strict_too(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_w=WEIRD)), *ISOLATED, "-o", "json", report=False)
    data = strict_json(run.stdout)
    assert {r["id"]: r["status"] for r in data["results"]} == {"w.weird": "pass", "w.nan_message": "pass"}


# -- B: report files ----------------------------------------------------------------------------

def test_a_symlinked_report_path_replaces_the_target_and_keeps_the_link(mgn, checks_dir, tmp_path: Path) -> None:
    real = tmp_path / "artefacts" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=OK)), *ISOLATED, "--json", str(link), report=False)
    assert run.exit_code == 0, run.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert strict_json(real.read_text())["summary"]["total"] == 1
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.json"]  # the temp file went with it


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create device nodes")
def test_a_device_is_written_directly_never_replaced(mgn, checks_dir, tmp_path: Path) -> None:
    # A private copy of /dev/null and /dev/full: the real ones are never put at risk by a test.
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    directory = str(checks_dir(check_r=OK))
    run = mgn("verify", "--checks-dir", directory, *ISOLATED, "--json", str(null), report=False)
    assert run.exit_code == 0, run.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    run = mgn("verify", "--checks-dir", directory, *ISOLATED, "--json", str(full), report=False)
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: cannot write report {full}: No space left on device\n"
    assert stat.S_ISCHR(full.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_symlink_to_stdout_writes_to_stdout(mgn_process, checks_dir, tmp_path: Path) -> None:
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, without touching /dev
    proc = mgn_process("verify", "--checks-dir", str(checks_dir(check_r=OK)), *ISOLATED, "-p", "no:console",
                       "--json", str(link))
    assert proc.returncode == 0, proc.stderr
    assert strict_json(proc.stdout)["summary"]["total"] == 1
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_a_fifo_is_written_directly(mgn, checks_dir, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=OK)), *ISOLATED, "--junit", str(fifo), report=False)
    reader.join(10)
    assert run.exit_code == 0, run.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert received and received[0].startswith('<?xml version="1.0"')


def test_dash_means_stdout(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_r=OK))
    as_json = mgn("verify", "--checks-dir", directory, *ISOLATED, "--json", "-", report=False)
    assert as_json.exit_code == 0, as_json.stderr
    assert strict_json(as_json.stdout)["results"][0]["id"] == "r.ok"  # and no console text around it
    as_junit = mgn("verify", "--checks-dir", directory, *ISOLATED, "--junit", "-", report=False)
    assert as_junit.stdout.startswith('<?xml version="1.0" encoding="utf-8"?>')


def test_new_and_existing_reports_honour_the_umask(mgn, checks_dir, tmp_path: Path, umask_022: None) -> None:
    directory = str(checks_dir(check_r=OK))
    new, existing = tmp_path / "new.json", tmp_path / "existing.xml"
    existing.write_text("old")
    existing.chmod(0o644)
    run = mgn("verify", "--checks-dir", directory, *ISOLATED, "--json", str(new), "--junit", str(existing),
              report=False)
    assert run.exit_code == 0, run.stderr
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_two_reports_to_one_file_is_a_usage_error(mgn, checks_dir, tmp_path: Path, spelling: str) -> None:
    ran = tmp_path / "ran"
    directory = checks_dir(check_r=f'from pathlib import Path\ndef check_ok(): Path({str(ran)!r}).write_text("x")\n')
    target = tmp_path / "r.out"
    other = {"same": target, "dotted": tmp_path / "sub" / ".." / "r.out", "symlink": tmp_path / "alias"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        other.symlink_to(target)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(target), "--junit", str(other),
              report=False)
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: ") and run.stderr.count("\n") == 1
    assert "same file" in run.stderr
    assert not ran.exists()  # nothing ran; the first report says why
    assert json.loads(target.read_text())["summary"]["errors"] == [run.stderr[len("mgn: error: "):].strip()]


def test_an_empty_report_path_is_a_usage_error(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=OK)), *ISOLATED, "--json", "", report=False)
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: ") and "--json" in run.stderr
    assert "Traceback" not in run.stderr


def test_relative_report_paths_are_resolved_when_the_command_starts(mgn_process, checks_dir,
                                                                    tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    directory = checks_dir(check_r=f'import os\ndef check_wander(): os.chdir({str(elsewhere)!r})\n')
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--json", "rel.json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "rel.json").exists()  # mgn_process runs in tmp_path
    assert not (elsewhere / "rel.json").exists()


def test_stale_temp_files_of_a_dead_writer_are_removed(mgn, checks_dir, tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f".r.json.{dead.stdout.strip()}.a1b2c3.tmp"
    stale.write_text("x" * 1000)
    alive = tmp_path / f".r.json.{os.getpid()}.d4e5f6.tmp"  # a writer that is still running
    alive.write_text("y")
    unrelated = tmp_path / ".other.json.1.zzz.tmp"
    unrelated.write_text("z")
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=OK)), *ISOLATED, "--json", str(tmp_path / "r.json"),
              report=False)
    assert run.exit_code == 0, run.stderr
    assert not stale.exists()
    assert alive.exists() and unrelated.exists()


# -- C: machine-readable stdout -----------------------------------------------------------------

def test_nothing_but_the_report_reaches_stdout_in_machine_readable_mode(mgn_process, checks_dir) -> None:
    directory = checks_dir(check_r='''
import os, subprocess, sys
def check_noisy():
    os.write(1, b"raw fd write\\n")
    subprocess.run([sys.executable, "-c", "print('from a subprocess')"], check=True)
''')
    for fmt in ("json", "junit"):
        proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "-o", fmt)
        assert proc.returncode == 0, proc.stderr
        assert "raw fd write" not in proc.stdout and "from a subprocess" not in proc.stdout
        assert "raw fd write" in proc.stderr and "from a subprocess" in proc.stderr
        if fmt == "json":
            assert strict_json(proc.stdout)["results"][0]["status"] == "pass"
        else:
            assert proc.stdout.startswith('<?xml version="1.0" encoding="utf-8"?>')


def test_captured_output_is_shown_only_for_checks_that_did_not_pass(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_o='''
def check_quiet_pass(): print("chatter of a pass")
def check_loud_fail():
    for n in range(30):
        print(f"line {n}")
    print("evil \\x1b[2J end")
    assert False, "broken"
''')
    junit = tmp_path / "j.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--junit", str(junit))
    assert run.exit_code == 1
    assert "chatter of a pass" not in run.stdout
    assert "      output:" in run.stdout
    assert "        evil \\x1b[2J end" in run.stdout and "\x1b" not in run.stdout
    assert "        line 29" in run.stdout and "        line 0\n" not in run.stdout  # bounded: the last lines
    assert "earlier lines in the JSON report" in run.stdout
    assert "line 0" in run.result("o.loud_fail")["output"]
    assert run.result("o.quiet_pass")["output"] == "chatter of a pass\n"
    validate(run.report)
    cases = {c["@name"]: c for c in xmlschema.XMLSchema(str(JUNIT_XSD)).to_dict(str(junit))["testsuite"][0]["testcase"]}
    assert "output:\nline 0" in cases["o.loud_fail"]["system-out"][0]


# -- D: reports even when loading fails or is interrupted ----------------------------------------

def test_a_failed_load_still_prints_the_json_report_on_stdout(mgn, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    run = mgn("verify", *ISOLATED, "--config", str(missing), "-o", "json", report=False)
    assert run.exit_code == 2
    data = strict_json(run.stdout)
    validate(data)
    assert data["results"] == [] and data["summary"]["exit_code"] == 2
    assert str(missing) in data["summary"]["errors"][0]
    broken = mgn("verify", *ISOLATED, "-p", "no_such_plugin_module", "-o", "junit", report=False)
    assert broken.exit_code == 2
    xsd = xmlschema.XMLSchema(str(JUNIT_XSD))
    xsd.validate(broken.stdout)
    assert "no_such_plugin_module" in broken.stdout  # the error is in the document, not only on stderr


def test_a_failure_after_loading_emits_through_the_sessions_reporters(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_r='''
def check_ok(): pass
def mgn_register_reporters(reporters):
    class Count:
        def __init__(self, context): pass
        def render(self, report): return f"errors={len(report.errors)} results={len(report.results)}\\n"
    reporters.add("count", Count)
''')
    out = tmp_path / "r.json"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--check", "nothing.*", "-o", "count",
              "--json", str(out), report=False)
    assert run.exit_code == 2
    assert run.stdout == "errors=1 results=0\n"
    assert "matches no check" in strict_json(out.read_text())["summary"]["errors"][0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_plugins_load_still_writes_the_reports(checks_dir, tmp_path: Path, sig: int) -> None:
    loading = tmp_path / "loading"
    directory = checks_dir(check_slow=f'''
import time
from pathlib import Path
Path({str(loading)!r}).write_text("x")
time.sleep(60)
def check_never(): pass
''')
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory),
                             *ISOLATED, "--json", str(report), "--junit", str(junit)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not loading.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the check file never started loading"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = strict_json(report.read_text())
    validate(data)
    assert data["results"] == [] and data["run"]["interrupted"] is True
    assert data["summary"]["exit_code"] == 130
    assert any("interrupted" in error for error in data["summary"]["errors"])
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))


# -- E: a check cannot drive the terminal -------------------------------------------------------

def test_control_characters_are_escaped_on_the_console(mgn, checks_dir) -> None:
    directory = checks_dir(check_e='''
from mgn_verify import check, parametrize
@check(id="e.msg", title="title \\x1b]0;pwned\\x07")
def check_msg(): assert False, "clear \\x1b[2J nul \\x00 bell \\x07 c1 \\x9b tab\\tkept\\nsecond line"
@parametrize("name", ["\\x1b[31mred"])
@check(id="e.param")
def check_param(name): assert False, "param"
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, report=False)
    assert run.exit_code == 1
    for raw in ("\x1b", "\x00", "\x07", "\x9b"):
        assert raw not in run.stdout + run.stderr
    assert "clear \\x1b[2J nul \\x00 bell \\x07 c1 \\x9b tab\tkept" in run.stdout
    assert "      second line" in run.stdout
    assert "title \\x1b]0;pwned\\x07" in run.stdout
    assert "e.param[\\x1b[31mred]" in run.stdout


# -- G: one reporter seam ------------------------------------------------------------------------

def test_the_reporter_infrastructure_lives_in_core() -> None:
    import mgn_verify
    from mgn_verify import _reporting, reporters

    assert mgn_verify.ReporterRegistry is _reporting.ReporterRegistry is reporters.ReporterRegistry
    assert mgn_verify.ReporterContext is _reporting.ReporterContext
    for module in ("hookspecs.py", "_session.py", "cli/_emit.py", "cli/verify.py"):
        tree = ast.parse((REPO / "mgn_verify" / module).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {name for name in imported if name.endswith("reporters") or ".reporters." in name}, module

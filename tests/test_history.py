"""Run history (issue 12): real ``mgn verify`` runs recorded in a real SQLite file, then listed
(``mgn verify history``) and compared (``mgn verify diff``); concurrent writers, a corrupt file,
secrets; and the shared comparison (``mgn_verify.history.compare``)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mgn_verify._exitcodes import ExitCode
from mgn_verify._model import Result, Severity, Status
from mgn_verify._report import RunReport
from mgn_verify.history.compare import Change, CheckState, changes, states
from tests.helpers import ISOLATED, Run

# Two checks: demo.flip passes while the state file says "ok"; demo.steady always passes.
FLIP = '''
from pathlib import Path
from mgn_verify import check
STATE = Path(__file__).parent.parent / "state"
@check(id="demo.flip", layer="system")
def check_flip():
    state = STATE.read_text().strip()
    assert state == "ok", f"state is {state}"
@check(id="demo.steady", layer="system")
def check_steady():
    pass
'''


def as_typed(monkeypatch: pytest.MonkeyPatch, mgn: Callable[..., Run]) -> Callable[..., Run]:
    """``mgn`` in-process with ``sys.argv`` as the console script sets it (a run records it)."""
    def run(*args: str, **kwargs: Any) -> Run:
        monkeypatch.setattr(sys, "argv", ["/usr/bin/mgn", *args])
        return mgn(*args, **kwargs)

    return run


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".metaguildnet" / "history.db"


def listed(mgn: Callable[..., Run], *args: str) -> Any:
    run = mgn("verify", "history", "-o", "json", *args, report=False)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def diffed(mgn: Callable[..., Run], *args: str) -> Any:
    run = mgn("verify", "diff", "-o", "json", *args, report=False)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def kinds(diff: Any) -> list[tuple[str, str, str | None, str | None]]:
    return [(c["id"], c["kind"], (c["before"] or {}).get("status"), (c["after"] or {}).get("status"))
            for c in diff["changes"]]


# -- the shared comparison ------------------------------------------------------------------------

def test_changes_lists_status_changes_then_new_then_removed() -> None:
    before = {"a": CheckState("pass", "ok"), "b": CheckState("fail", "x"), "gone": CheckState("pass", "")}
    after = {"new": CheckState("warn", "w"), "b": CheckState("pass", "fine"), "a": CheckState("pass", "other text")}
    found = changes(before, after)
    assert found == [Change("new", None, CheckState("warn", "w")),
                     Change("b", CheckState("fail", "x"), CheckState("pass", "fine")),
                     Change("gone", CheckState("pass", ""), None)]
    assert [c.kind for c in found] == ["new", "changed", "removed"]  # "a": only its message changed
    assert changes(after, after) == []
    report = RunReport(results=[Result("z.one", "One", "z", Status.FAIL, Severity.CRITICAL, message="broken"),
                                Result("a.two", "Two", "a", Status.PASS, Severity.CRITICAL)],
                       started_at=datetime.now(UTC), duration_s=0.1, hostname="h", argv=["mgn"], tool_version="0",
                       exit_code=ExitCode.FAILED)
    assert list(states(report).items()) == [("z.one", CheckState("fail", "broken")), ("a.two", CheckState("pass", ""))]


# -- history and diff across real runs ------------------------------------------------------------

def test_history_and_diff_follow_real_runs(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgn = as_typed(monkeypatch, mgn)
    directory = checks_dir(check_flip=FLIP)
    state = tmp_path / "state"
    base = ("verify", "--checks-dir", str(directory), *ISOLATED)
    empty = mgn("verify", "history", report=False)
    assert (empty.exit_code, empty.stdout.strip()) == (0, f"no runs recorded yet in {db_path(tmp_path)}")
    nothing = mgn("verify", "diff", report=False)
    assert nothing.exit_code == 2 and nothing.stderr.strip().startswith("mgn: error: no runs recorded yet")

    state.write_text("ok")
    assert mgn(*base).exit_code == 0  # run 1: green
    state.write_text("bad")
    assert mgn(*base).exit_code == 1  # run 2: demo.flip fails
    assert mgn(*base, "--skip", "demo.steady").exit_code == 1  # run 3: demo.steady not run

    runs = listed(mgn)
    assert [(r["id"], r["exit_code"], r["total"]) for r in runs] == [(3, 1, 1), (2, 1, 2), (1, 0, 2)]
    assert runs[1]["counts"] == {"pass": 1, "warn": 0, "fail": 1, "error": 0, "skip": 0, "blocked": 0, "waived": 0}
    assert runs[0]["argv"][-2:] == ["--skip", "demo.steady"] and runs[0]["selection"] == ["all"]
    assert set(runs[0]) == {"id", "run_id", "started_at", "duration_s", "argv", "exit_code", "counts", "total",
                            "selection"}
    assert [r["id"] for r in listed(mgn, "-n", "2")] == [3, 2]
    table = mgn("verify", "history", report=False).stdout.splitlines()
    assert table[0].split() == ["ID", "STARTED", "DURATION", "EXIT", "RESULTS", "COMMAND"]
    assert [line.split()[0] for line in table[1:]] == ["3", "2", "1"]
    assert "1 pass, 1 fail" in table[2] and "2 pass" in table[3]
    assert table[1].endswith(" mgn verify --checks-dir " + " ".join([str(directory), *ISOLATED]) +
                             " --skip demo.steady")

    # Default: the last run against the one before it.
    last = diffed(mgn)
    assert (last["before"]["id"], last["after"]["id"]) == (2, 3)
    assert kinds(last) == [("demo.steady", "removed", "pass", None)]
    flipped = diffed(mgn, "1", "2")
    assert flipped["changes"] == [{"id": "demo.flip", "kind": "changed", "before": {"status": "pass", "message": ""},
                                   "after": {"status": "fail", "message": flipped["changes"][0]["after"]["message"]}}]
    assert flipped["changes"][0]["after"]["message"].startswith("state is bad")
    green = diffed(mgn, "--since-green")
    assert (green["before"]["id"], green["after"]["id"]) == (1, 3)
    assert kinds(green) == [("demo.flip", "changed", "pass", "fail"), ("demo.steady", "removed", "pass", None)]
    assert kinds(diffed(mgn, "3", "1")) == [("demo.flip", "changed", "fail", "pass"),
                                            ("demo.steady", "new", None, "pass")]
    by_run_id = diffed(mgn, runs[2]["run_id"][:8])  # one run: it against the last one
    assert (by_run_id["before"]["id"], by_run_id["after"]["id"]) == (1, 3)

    text = mgn("verify", "diff", "1", "2", report=False)
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("run 1 (") and "exit 0) → run 2 (" in lines[0] and lines[0].endswith("1 change")
    assert lines[1].split() == ["demo.flip", "pass", "→", "fail"]
    assert lines[2].split()[:4] == ["after:", "state", "is", "bad"]

    for args, why in [(("99",), "no run '99' in "), (("1", "2", "--since-green"), "give at most one RUN"),
                      (("--since-green", "1"), "no green run (exit code 0) recorded before run 1")]:
        bad = mgn("verify", "diff", *args, report=False)
        assert bad.exit_code == 2 and why in bad.stderr and len(bad.stderr.splitlines()) == 1, bad.stderr


def test_no_history_disabled_keep_and_path_settings(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    directory = checks_dir(check_flip=FLIP)
    (tmp_path / "state").write_text("ok")
    base = ("verify", "--checks-dir", str(directory), *ISOLATED)
    assert mgn(*base, "--no-history").exit_code == 0
    assert mgn(*base, "--set", "history.enabled=false").exit_code == 0
    assert not db_path(tmp_path).exists()

    # history.keep: the newest runs stay, with the ids they had; history.path from a config file.
    config = tmp_path / "mgn.yaml"
    elsewhere = tmp_path / "runs" / "h.db"
    config.write_text(f"history:\n  path: {elsewhere}\n  keep: 2\n")
    for _ in range(4):
        assert mgn(*base, "--config", str(config)).exit_code == 0
    assert not db_path(tmp_path).exists()
    assert [r["id"] for r in listed(mgn, "--config", str(config))] == [4, 3]
    assert [r["id"] for r in listed(mgn, "--set", f"history.path={elsewhere}")] == [4, 3]
    with sqlite3.connect(elsewhere) as conn:
        assert conn.execute("SELECT DISTINCT run_seq FROM results ORDER BY run_seq").fetchall() == [(3,), (4,)]
    conn.close()
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert stat.S_IMODE(elsewhere.parent.stat().st_mode) == 0o700


# -- robustness: concurrent writers, a corrupt or unwritable database ------------------------------

# Each process's check announces itself, then waits (with a deadline) until both have: the two
# runs then end, and write the database, at the same moment.
MEET = '''
import os, time
from pathlib import Path
from mgn_verify import check
HERE = Path(__file__).parent.parent
@check(id="meet.both", layer="system")
def check_meet():
    (HERE / f"arrived-{os.getpid()}").touch()
    deadline = time.monotonic() + 30
    while len(list(HERE.glob("arrived-*"))) < 2:
        assert time.monotonic() < deadline, "the other run never came"
        time.sleep(0.01)
'''


def test_two_runs_writing_at_once_are_both_recorded(checks_dir: Callable[..., Path], tmp_path: Path,
                                                    mgn: Callable[..., Run]) -> None:
    directory = checks_dir(check_meet=MEET)
    env = {**os.environ, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory), *ISOLATED]
    procs = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert all("history not recorded" not in err for _, err in outputs), outputs
    listing = mgn("verify", "history", report=False)
    assert listing.exit_code == 0, listing.stderr
    rows = listing.stdout.splitlines()[1:]
    assert sorted(row.split()[0] for row in rows) == ["1", "2"]
    assert all(row.endswith(f"mgn verify --checks-dir {directory} " + " ".join(ISOLATED)) for row in rows), rows
    conn = sqlite3.connect(db_path(tmp_path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (2,)
    finally:
        conn.close()


def test_a_corrupt_or_unwritable_database_is_one_warning(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                                         tmp_path: Path) -> None:
    directory = checks_dir(check_flip=FLIP)
    (tmp_path / "state").write_text("bad")
    path = db_path(tmp_path)
    path.parent.mkdir(parents=True)
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 1 and run.report is not None  # the run's own outcome, unchanged
    warnings = [line for line in run.stderr.splitlines() if "history" in line]
    assert warnings == [f"mgn: warning: history not recorded: file is not a database ({path})"], run.stderr
    assert "Traceback" not in run.stderr and path.read_bytes() == garbage
    for command in ("history", "diff"):
        read = mgn("verify", command, report=False)
        assert read.exit_code == 2 and read.stderr.splitlines() == [
            f"mgn: error: cannot read the history database {path}: file is not a database"]

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set",
                     f"history.path={blocker}/history.db")
    assert unwritable.exit_code == 1
    assert [line for line in unwritable.stderr.splitlines() if "history" in line] == [
        f"mgn: warning: history not recorded: not a directory: {blocker} ({blocker}/history.db)"]


# -- secrets ----------------------------------------------------------------------------------------

TOKEN = "tok-7Hq2ZpX91vLw"


def test_a_secret_never_reaches_the_database(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgn = as_typed(monkeypatch, mgn)
    directory = checks_dir(check_secret=f'''
from mgn_verify import check, parametrize
def mgn_add_settings(settings):
    settings.add("demo.key", "", secret=True, help="a credential")
@parametrize("key", [{TOKEN!r}])
@check(id="demo.login", layer="system")
def check_login(key, config):
    assert False, "rejected " + config["demo.key"]
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", f"demo.key={TOKEN}")
    assert run.exit_code == 1 and "demo.login[***]" in run.statuses
    files = list(db_path(tmp_path).parent.iterdir())
    assert db_path(tmp_path) in files
    assert all(TOKEN.encode() not in file.read_bytes() for file in files)
    recorded = listed(mgn)[0]
    assert f"demo.key={TOKEN}" not in recorded["argv"] and "demo.key=***" in recorded["argv"]
    conn = sqlite3.connect(db_path(tmp_path))
    try:
        assert conn.execute("SELECT check_id, message FROM results").fetchall() == [("demo.login[***]",
                                                                                     "rejected ***")]
    finally:
        conn.close()


@pytest.mark.parametrize("command", ["history", "diff"])
def test_help_documents_exit_codes(mgn: Callable[..., Run], command: str) -> None:
    shown = mgn("verify", command, "--help", report=False)
    assert shown.exit_code == 0 and "Exit codes:" in shown.stdout

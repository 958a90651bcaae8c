"""``mgn verify --watch``: a real ``mgn`` process re-running checks that flip (a state file the
test rewrites), read line by line as it prints: transitions only, flapping, Ctrl-C/SIGTERM at
any moment (mid-run too) ending with a summary and exit 130, every finished run in history."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.helpers import ISOLATED, wait_until

CHECKS = '''
import time
from pathlib import Path
from mgn_verify import check

HERE = Path({here!r})

@check(id="w.flip")
def check_flip():
    state = (HERE / "state").read_text().strip()
    if state != "pass":
        assert False, state

@check(id="w.broken")
def check_broken():
    assert False, "always broken"

@check(id="w.slow", timeout=600)
def check_slow():
    with (HERE / "runs").open("a") as runs:  # the test counts runs by this file's lines
        runs.write("run\\n")
    if (HERE / "slow").exists():  # the test asks for a run that hangs, to interrupt it mid-run
        (HERE / "slow-started").write_text("go")
        time.sleep(600)
'''


class Watch:
    """A running ``mgn verify --watch``; its stdout collected line by line by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "MGN_CONFIG": os.devnull, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, encoding="utf-8")
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.lines), (self.proc.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, wanted: Callable[[str], bool] | str, timeout: float = 30) -> str:
        """The first line (anywhere so far) matching; fail with the output if none comes."""
        match = wanted if callable(wanted) else (lambda line: wanted in line)

        def found() -> bool:
            if self.proc.poll() is not None and not self._readers[0].is_alive():
                raise AssertionError(f"mgn ended early: {self.lines} {self.stderr}")
            return any(match(line) for line in self.lines)

        wait_until(found, timeout=timeout, what=f"a line like {wanted!r} in {self.lines}")
        return next(line for line in self.lines if match(line))

    def stop(self, sig: int) -> tuple[int, list[str], str]:
        self.proc.send_signal(sig)
        self.end(timeout=60)
        return self.proc.returncode, self.lines, "\n".join(self.stderr)

    def end(self, timeout: float = 0) -> None:
        """Wait for the process (kill it after ``timeout``), then close its pipes."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def watch(checks_dir: Callable[..., Path], tmp_path: Path) -> Iterator[Callable[..., Watch]]:
    directory = checks_dir(check_watch=CHECKS.format(here=str(tmp_path)))
    (tmp_path / "state").write_text("pass")
    started: list[Watch] = []

    def start(*extra: str, interval: str = "0.2s") -> Watch:
        started.append(Watch(["verify", "--watch", interval, "--checks-dir", str(directory), *ISOLATED, *extra],
                             tmp_path))
        return started[-1]

    yield start
    for running in started:  # a failed test never leaves a watcher behind
        running.end()


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def history(tmp_path: Path) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "mgn_verify", "verify", "history", "-n", "1000", "-o", "json"],
                          capture_output=True, text=True, env={**os.environ, "MGN_CONFIG": os.devnull}, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def test_watch_prints_transitions_flapping_and_a_summary_on_ctrl_c_mid_run(watch, tmp_path: Path) -> None:
    w = watch("--set", "watch.flap_changes=2")
    first = w.wait_for("run 1:")
    assert w.lines[0] == "Watching 3 checks every 200 ms: only changes are shown (Ctrl-C to stop)"
    assert re.fullmatch(r"\d\d:\d\d:\d\d  run 1: 3 checks in [\d.]+ m?s: 2 pass, 1 fail", first), first
    assert w.lines[2].endswith("  w.broken  fail  always broken")  # the first run's failures
    shown = len(w.lines)
    wait_until(lambda: runs(tmp_path) >= 4, what="three more runs")
    assert len(w.lines) == shown, w.lines  # runs without a change print nothing

    (tmp_path / "state").write_text("disk full")
    line = w.wait_for("w.flip  pass")
    assert line.split("  ", 1)[1] == "w.flip  pass → fail  disk full"  # HH:MM:SS  id  old → new  message
    (tmp_path / "state").write_text("pass")
    assert w.wait_for("is flapping").endswith("  w.flip is flapping (2 changes in 10 min)")
    assert w.wait_for("w.flip  fail").endswith("  w.flip  fail → pass  [flapping]")

    done = runs(tmp_path)
    (tmp_path / "slow").write_text("hang")
    wait_until(lambda: (tmp_path / "slow-started").exists(), what="a run hanging in w.slow")
    assert runs(tmp_path) > done  # it is counted in the runs file, not in the summary
    code, lines, stderr = w.stop(signal.SIGINT)  # mid-run: that run is stopped, not counted
    assert code == 130, stderr
    assert "Traceback" not in stderr
    stopped = next(line for line in lines if "Stopped after" in line)
    completed = int(stopped.split("Stopped after ")[1].split(" run")[0])
    assert stopped.endswith("(the run under way was stopped and is not counted)")
    assert completed == runs(tmp_path) - 1
    assert lines[lines.index(stopped) + 1:] == [
        "Changed: w.flip (2 times, flapped)",
        "Flapped: w.flip",
        "Failing now: 1",
        "  w.broken  fail  always broken",
    ]
    recorded = history(tmp_path)
    assert len(recorded) == completed  # each finished run is in history, like a normal run


def test_sigterm_while_waiting_and_no_history(watch, tmp_path: Path) -> None:
    w = watch("--no-history", interval="1h")  # after run 1 it waits: the signal comes between runs
    w.wait_for("run 1:")
    assert w.lines[0] == "Watching 3 checks every 1 h, not recorded in history: only changes are shown " \
        "(Ctrl-C to stop)"
    code, lines, stderr = w.stop(signal.SIGTERM)
    assert code == 130, stderr
    assert " Stopped after 1 run in " in lines[-4] and "not counted" not in lines[-4]
    assert lines[-3:] == ["Changed: nothing", "Failing now: 1", "  w.broken  fail  always broken"]
    assert runs(tmp_path) == 1
    assert history(tmp_path) == []


def test_a_closed_stdout_ends_the_watch_quietly(watch, tmp_path: Path) -> None:
    # Our own pipe (the fixture's reader thread would hold it): the fixture only wrote the checks.
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--watch", "0.2s", "--checks-dir",
                             str(tmp_path / "checks"), *ISOLATED], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "MGN_CONFIG": os.devnull}, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        proc.stdout.readline(), proc.stdout.readline()  # header and run 1, as `| head -2` reads them
        proc.stdout.close()
        (tmp_path / "state").write_text("broken")  # the next transition finds nobody reading
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr == "mgn: warning: stdout was closed: watching stopped\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--watch", "0"], "mgn: error: invalid --watch interval '0': use a duration above 0, e.g. 30s, 5m, 1h30m"),
    (["--watch", "soon"], "mgn: error: invalid --watch interval 'soon': use a duration above 0, e.g. 30s, 5m, 1h30m"),
    (["--watch", "1s", "--json", "r.json"],
     "mgn: error: --watch prints transitions; report options (--json, --junit, --html, --markdown, -o, "
     "--github-annotations) are not supported with it"),
], ids=["zero", "not-a-duration", "report-option"])
def test_bad_watch_options_are_one_line_usage_errors(mgn, checks_dir, args: list[str], message: str) -> None:
    directory = checks_dir(check_ok="from mgn_verify import check\n@check(id='ok.one')\ndef check_one(): pass\n")
    result = mgn("verify", "--checks-dir", str(directory), *ISOLATED, *args, report=False)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""

"""``mgn lab up|down|status``: click's CliRunner for the quick paths, real processes for detaching."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from mgn_verify.lab.cli import STATE_FILENAME, lab
from tests.lab.helpers import refused, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _lab_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def run_lab(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mgn_verify.lab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_lab_env(),
        check=False,
    )


@contextlib.contextmanager
def lab_up_in_the_foreground(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``mgn lab up`` as a real foreground process; killed on the way out if still running."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "mgn_verify.lab", "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_lab_env(),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    yield directory
    # Never leave a detached lab behind, whatever the test did.
    state_file = directory / STATE_FILENAME
    if state_file.exists():
        pid = int(json.loads(state_file.read_text())["pid"])
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_lab_is_a_click_group() -> None:
    assert isinstance(lab, click.Group)
    assert lab.name == "lab"
    assert set(lab.commands) == {"up", "down", "status", "fault"}
    assert set(lab.commands["fault"].commands) == {"add", "clear", "list"}  # type: ignore[attr-defined]


def test_status_and_down_when_nothing_runs(state_dir: Path) -> None:
    runner = CliRunner()
    status = runner.invoke(lab, ["status", "--state-dir", str(state_dir)])
    assert status.exit_code == 1
    assert "No lab is running." in status.output
    down = runner.invoke(lab, ["down", "--state-dir", str(state_dir)])
    assert down.exit_code == 0
    assert "No lab is running" in down.output
    as_json = runner.invoke(lab, ["status", "--json", "--state-dir", str(state_dir)])
    assert json.loads(as_json.output) == {"running": False}


def test_stale_state_is_cleaned_up(state_dir: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILENAME).write_text(json.dumps({"pid": dead.pid, "config_path": "/nowhere"}))
    runner = CliRunner()
    down = runner.invoke(lab, ["down", "--state-dir", str(state_dir)])
    assert down.exit_code == 0
    assert f"removed stale state of pid {dead.pid}" in down.output
    assert not (state_dir / STATE_FILENAME).exists()


def test_state_dir_from_the_environment(state_dir: Path) -> None:
    result = CliRunner().invoke(lab, ["status"], env={"MGN_LAB_STATE_DIR": str(state_dir)})
    assert result.exit_code == 1 and "No lab is running." in result.output


def test_unknown_fault_is_rejected_before_starting(state_dir: Path) -> None:
    result = CliRunner().invoke(
        lab, ["up", "--fault", "rethinkdb.dwn", "--detach", "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 2
    assert "unknown fault 'rethinkdb.dwn' (did you mean 'rethinkdb.down'?)" in result.output
    assert not state_dir.exists()


def test_up_detach_status_down(state_dir: Path) -> None:
    up = run_lab(
        "up",
        "--detach",
        "--fault",
        "tailscale.down",
        "--fault",
        "headscale.down",
        "--state-dir",
        str(state_dir),
    )
    assert up.returncode == 0, up.stderr
    state = json.loads((state_dir / STATE_FILENAME).read_text())
    pid = int(state["pid"])
    config_path = Path(state["config_path"])
    assert f"config:  {config_path}" in up.stdout
    assert f"mgn verify all --config {config_path}" in up.stdout
    config = yaml.safe_load(config_path.read_text())
    assert not os.path.exists(config["tailscale"]["socket"])  # started with tailscale.down
    assert sorted(state["faults"]) == ["headscale.down", "tailscale.down"]

    status = run_lab("status", "--state-dir", str(state_dir))
    assert status.returncode == 0
    assert f"pid {pid}" in status.stdout and "headscale.down, tailscale.down" in status.stdout
    as_json = json.loads(CliRunner().invoke(lab, ["status", "--json", "--state-dir", str(state_dir)]).output)
    assert as_json["running"] is True and as_json["pid"] == pid

    again = run_lab("up", "--detach", "--state-dir", str(state_dir))
    assert again.returncode == 2
    assert f"a lab is already running (pid {pid}" in again.stderr

    down = run_lab("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert f"mgn lab stopped (pid {pid})" in down.stdout
    assert pid_gone(pid)
    assert not (state_dir / STATE_FILENAME).exists()
    assert not config_path.exists()  # the temp workdir went with it
    assert "mgn lab stopped" in (state_dir / "lab.log").read_text()
    assert run_lab("status", "--state-dir", str(state_dir)).returncode == 1


def test_up_in_the_foreground_stops_on_sigterm(state_dir: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    with lab_up_in_the_foreground("--state-dir", str(state_dir), "--workdir", str(workdir)) as process:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"mgn lab is up (pid {process.pid})")
        assert lines[1] == f"config:  {workdir / 'mgn-lab.yaml'}\n"
        assert lines[2] == f"use it:  mgn verify all --config {workdir / 'mgn-lab.yaml'}\n"
        assert json.loads((state_dir / STATE_FILENAME).read_text())["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "mgn lab stopped" in out
    assert not (state_dir / STATE_FILENAME).exists()
    assert (workdir / "mgn-lab.yaml").exists()  # an explicit workdir is kept


def test_up_in_the_foreground_stops_on_ctrl_c(state_dir: Path) -> None:
    with lab_up_in_the_foreground("--state-dir", str(state_dir)) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("mgn lab is up")
        config_path = Path(process.stdout.readline().split()[-1])
        assert config_path.exists()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "mgn lab stopped" in out
    wait_until(lambda: not config_path.exists(), what="the config file removed")


def test_fault_add_clear_list_on_a_running_lab(state_dir: Path) -> None:
    assert run_lab("up", "--detach", "--state-dir", str(state_dir)).returncode == 0
    state = json.loads((state_dir / STATE_FILENAME).read_text())
    port = int(state["rethinkdb"].rsplit(":", 1)[1])
    assert not refused(port)
    try:
        added = run_lab("fault", "add", "rethinkdb.down", "--state-dir", str(state_dir))
        assert added.returncode == 0, added.stderr
        assert "active faults: rethinkdb.down" in added.stdout
        assert refused(port)  # the running simulator took it, no restart
        listed = json.loads(run_lab("fault", "list", "--json", "--state-dir", str(state_dir)).stdout)
        assert listed["active"] == ["rethinkdb.down"] and "kubernetes.slow" in listed["known"]
        assert "rethinkdb.down" in run_lab("status", "--state-dir", str(state_dir)).stdout

        typo = run_lab("fault", "add", "kubernetes.down", "rethinkdb.dwon", "--state-dir", str(state_dir))
        assert typo.returncode == 2  # a usage error, and nothing was applied
        assert "unknown fault 'rethinkdb.dwon' (did you mean 'rethinkdb.down'?)" in typo.stderr
        assert "Traceback" not in typo.stderr
        after = json.loads(run_lab("fault", "list", "--json", "--state-dir", str(state_dir)).stdout)
        assert after["active"] == ["rethinkdb.down"]

        assert run_lab("fault", "clear", "--state-dir", str(state_dir)).returncode == 2
        cleared = run_lab("fault", "clear", "--all", "--state-dir", str(state_dir))
        assert cleared.returncode == 0 and "active faults: none" in cleared.stdout
        wait_until(lambda: not refused(port), what="the listener back on the same port")
    finally:
        run_lab("down", "--state-dir", str(state_dir))


def test_fault_commands_without_a_lab(state_dir: Path) -> None:
    listed = run_lab("fault", "list", "--state-dir", str(state_dir))
    assert listed.returncode == 0 and "  rethinkdb.down" in listed.stdout and "no lab is running" in listed.stdout
    added = run_lab("fault", "add", "rethinkdb.down", "--state-dir", str(state_dir))
    assert added.returncode == 1 and "no lab is running" in added.stderr

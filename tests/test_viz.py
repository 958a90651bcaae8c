"""``mgn viz`` against the real lab: the one-shot snapshot (stdout a pipe) and the live
dashboard in a real terminal (tmux: keys sent, the pane captured), a fault injected while it runs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mgn_verify.clients.hostapp import HostAppClient
from mgn_verify.lab import Lab
from tests.helpers import REPO, wait_until

pytestmark = pytest.mark.slow  # each runs the GuildNet layers' preflight against the lab (seconds)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        with HostAppClient(running.hostapp.url, ca_bundle=str(running.ca.ca_path)) as api:
            api.create_workspace(running.cluster_id, "web", "nginx:1.25")
            wait_until(lambda: [s.status for s in api.servers(running.cluster_id)] == ["running"], timeout=30,
                       what="the workspace running")
        yield running


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    lab.clear_all()
    yield lab
    lab.clear_all()


def lab_secrets(lab: Lab) -> list[str]:
    """The Host App token and every credential the lab's config and kubeconfig hold."""
    config = yaml.safe_load(lab.config_path.read_text())
    kubeconfig = yaml.safe_load(Path(config["kubernetes"]["kubeconfig"]).read_text())
    from_kubeconfig = [str(value) for entry in kubeconfig.get("users", []) for key, value in entry["user"].items()
                       if key in ("token", "client-key-data", "password")]
    return [s for s in (lab.api_token, lab.kube_token, lab.rethinkdb_password, *from_kubeconfig) if s]


def viz_once(lab: Lab, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MGN_CONFIG": os.devnull}
    return subprocess.run([sys.executable, "-m", "mgn_verify", "viz", "--config", str(lab.config_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_one_shot_snapshot_lists_everything_and_exits_with_the_verdict(clean_lab: Lab, tmp_path: Path) -> None:
    run = viz_once(clean_lab, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "\x1b" not in out  # plain text: not a terminal
    assert "Host App https://127.0.0.1:" in out and ": ok" in out
    assert "cluster lab: ok" in out
    assert "nodes: 2/2 Ready" in out and "lab-control-plane  Ready" in out
    assert "workspaces: 1" in out and "web  running  phase Running  nginx:1.25" in out
    assert "rethinkdb: ok" in out and "Tailnet: ok" in out
    assert "preflight: " in out and " pass" in out
    assert out.rstrip().endswith("verdict: healthy")

    clean_lab.inject("hostapp.down")  # the Host App down: the snapshot still, one error line, exit 5
    down = viz_once(clean_lab, tmp_path)
    assert down.returncode == 5, down.stdout + down.stderr
    assert "Host App https://127.0.0.1:" in down.stdout and "DOWN" in down.stdout
    assert "verdict: FAILING: Host App:" in down.stdout
    assert "nodes: 2/2 Ready" in down.stdout  # through the kubeconfig, not the Host App
    assert down.stderr.startswith("mgn: error: the Host App at https://127.0.0.1:")
    assert len(down.stderr.strip().splitlines()) == 1 and "Traceback" not in down.stderr
    for secret in lab_secrets(clean_lab):
        assert secret not in run.stdout + run.stderr + down.stdout + down.stderr


class Pane:
    """A tmux server of its own (``-L``) with one 160x50 pane running ``command``."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.socket = f"mgn-viz-{os.getpid()}-{secrets.token_hex(4)}"
        env = [f"{key}={os.environ[key]}" for key in ("HOME", "PATH") if key in os.environ]
        self.tmux("new-session", "-d", "-x", "160", "-y", "50", "-s", "viz", "-c", str(cwd),
                  *[arg for pair in env for arg in ("-e", pair)], "-e", f"PYTHONPATH={REPO}", command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "viz")

    def styled(self) -> str:
        return self.tmux("capture-pane", "-p", "-e", "-t", "viz")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def test_live_dashboard_in_tmux_shows_a_fault_injected_while_it_runs(clean_lab: Lab, tmp_path: Path) -> None:
    # After viz ends the pane records its exit code and the terminal's mode, then stays open.
    # COLUMNS/LINES of the test process would reach the tmux server: the pane's own size must count.
    command = (f"env -u COLUMNS -u LINES {sys.executable} -m mgn_verify viz --config {clean_lab.config_path} "
               "--refresh 0.5; echo $? > rc.txt; stty -a > stty.txt; sleep 60")
    pane = Pane(command, tmp_path)
    seen: list[str] = [""]

    def wait_for(what: str, *parts: str) -> None:
        def shows() -> bool:
            seen.append(pane.text())
            return all(part in seen[-1] for part in parts)

        try:
            wait_until(shows, timeout=60, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the pane:\n{seen[-1]}") from None

    try:
        wait_for("the dashboard with the cluster and a preflight run", "cluster lab ok", "lab-control-plane", "web",
                 "verdict: healthy", " took ")
        assert pane.tmux("display", "-p", "-t", "viz", "#{alternate_on}").strip() == "1"

        clean_lab.inject("kubernetes.down")
        wait_for("the fault on the dashboard", "cluster lab failing", "kubernetes.api.reachable[lab]", "pass → fail")
        assert "Kubernetes unreachable" in seen[-1] and "verdict: FAILING" in seen[-1]
        # The transition is highlighted (black on yellow) on the transition's row.
        row = next(line for line in pane.styled().splitlines() if "pass" in line and "kubernetes.api.reachable" in line)
        assert "\x1b[1m\x1b[30m\x1b[43m" in row or "\x1b[1;30;43m" in row, repr(row)

        pane.tmux("send-keys", "-t", "viz", "q")
        wait_until(lambda: (tmp_path / "stty.txt").exists(), timeout=15, what="viz to exit after q")
        assert (tmp_path / "rc.txt").read_text().strip() == "0"
        mode = (tmp_path / "stty.txt").read_text().split()
        assert "icanon" in mode and "echo" in mode  # cbreak mode undone
        assert pane.tmux("display", "-p", "-t", "viz", "#{alternate_on}").strip() == "0"  # the main screen back
        for secret in lab_secrets(clean_lab):
            assert all(secret not in screen for screen in seen)
    finally:
        pane.kill()

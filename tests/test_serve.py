"""Issue 12, ``mgn verify serve``: the real command as a subprocess, its endpoints over real HTTP,
against a check that flips (a state file the test rewrites) and can be held mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ISOLATED, wait_until

TOKEN = "tok-5e3rv3-4b1c9d"
PASSWORD = "pw-R3th1nk-77aa"  # a second secret, given with --set: both ids redact to demo.login[***]
STATUSES = ["pass", "warn", "fail", "error", "skip", "blocked", "waived"]

# demo.flip reads the state file: "ok" passes, "fail" fails, "hold" keeps the run going until
# the test writes something else (a slow run, ended by the test rather than by a sleep).
FLIP = f'''
import os, time
from pathlib import Path
from mgn_verify import check, parametrize

STATE = Path(__file__).with_name("state")

@check(id="demo.flip", timeout=60)
def check_flip():
    while STATE.read_text().strip() == "hold":
        time.sleep(0.02)
    state = STATE.read_text().strip()
    assert state == "ok", "state is " + state + " with token " + os.environ["MGN_API_TOKEN"]

@parametrize("tok", [{TOKEN!r}, {PASSWORD!r}])
@check(id="demo.login")
def check_login(tok):
    pass
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, stderr: Path) -> None:
        self.proc, self.port, self.stderr_path = proc, port, stderr
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """Family name -> sorted labels -> value (parsed by prometheus_client's own parser)."""
        text = self.get("/metrics").text
        return {family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
                for family in text_string_to_metric_families(text)}


def set_state(checks: Path, state: str) -> None:
    """Atomically: the check never reads a half-written (empty) file."""
    (checks / "state.new").write_text(state)
    os.replace(checks / "state.new", checks / "state")


@pytest.fixture
def serve(tmp_path: Path, checks_dir: Callable[..., Path]) -> Iterator[Callable[..., Served]]:
    """``serve(*args, state=...)`` starts ``mgn verify serve`` on a free loopback port (unless
    args say where) with the flip checks, and waits until it answers; stopped at the end."""
    started: list[Served] = []
    directory = checks_dir(check_flip=FLIP)

    def start(*args: str, state: str = "ok", host: str = "127.0.0.1") -> Served:
        set_state(directory, state)
        port = free_port()
        stderr = tmp_path / f"serve-{port}.err"
        env = {**os.environ, "MGN_CONFIG": os.devnull, "MGN_API_TOKEN": TOKEN}
        argv = [sys.executable, "-m", "mgn_verify", "verify", "serve", "--listen", f"{host}:{port}",
                "--interval", "0.3s", "--checks-dir", str(directory), "--set", f"rethinkdb.password={PASSWORD}",
                *ISOLATED, *args]
        with stderr.open("w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, text=True, env=env, cwd=tmp_path)
        served = Served(proc, port, stderr)
        started.append(served)

        def answering() -> bool:
            assert proc.poll() is None, f"serve ended early: {served.stderr()}"
            try:
                served.get("/healthz")
            except httpx.TransportError:
                return False
            return True

        wait_until(answering, timeout=20, what="serve answering")
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
        served.client.close()


def test_endpoints_follow_a_flipping_check_and_a_held_run_blocks_none(serve, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    served = serve(state="hold")  # the first run cannot finish until the test says so
    # A run in progress blocks no endpoint: they answer, with what is known (nothing yet).
    health = served.get("/healthz")
    assert (health.status_code, health.text) == (503, "no run finished yet\n")
    assert served.get("/report").status_code == 503
    metrics = served.metrics()
    assert metrics["mgn_runs"][()] == 0 and metrics["mgn_run_in_progress"][()] == 1
    assert "no run finished yet" in served.get("/").text

    set_state(checks, "ok")
    wait_until(lambda: served.get("/healthz").status_code == 200, what="healthz 200")
    assert served.get("/healthz").text.startswith("healthy: 3 pass")
    report = served.get("/report").json()
    assert [(r["id"], r["status"]) for r in report["results"]] == [
        ("demo.flip", "pass"), ("demo.login[***]", "pass"), ("demo.login[***]", "pass")]
    assert report["schema_version"] and report["summary"]["exit_code"] == 0
    metrics = served.metrics()
    assert set(metrics) >= {"mgn_check_status", "mgn_check_duration_seconds", "mgn_run_duration_seconds",
                            "mgn_runs", "mgn_last_run_timestamp_seconds"}
    status = metrics["mgn_check_status"]
    # Ids that redaction made equal stay distinct series (a duplicate one would fail the scrape).
    assert {dict(labels)["check"] for labels in status} == {"demo.flip", "demo.login[***]", "demo.login[***]#2"}
    flip = {dict(labels)["status"]: value for labels, value in status.items() if dict(labels)["check"] == "demo.flip"}
    assert flip == {s: (1.0 if s == "pass" else 0.0) for s in STATUSES}
    assert (("check", "demo.flip"), ("layer", "demo")) in metrics["mgn_check_duration_seconds"]
    assert metrics["mgn_runs"][()] >= 1 and metrics["mgn_last_run_timestamp_seconds"][()] > 0

    set_state(checks, "fail")
    wait_until(lambda: served.get("/healthz").status_code == 503, what="healthz 503")
    assert served.get("/healthz").text.startswith("unhealthy: 2 pass, 1 fail (exit 1")
    flip_fail = (("check", "demo.flip"), ("layer", "demo"), ("status", "fail"))
    wait_until(lambda: served.metrics()["mgn_check_status"][flip_fail] == 1.0, what="fail in metrics")
    failed = {r["id"]: r for r in served.get("/report").json()["results"]}
    assert failed["demo.flip"]["message"].startswith("state is fail with token ***")
    page = served.get("/")
    assert page.headers["content-type"].startswith("text/html") and "<script" not in page.text
    assert 'http-equiv="refresh"' in page.text and "demo.login[***]" in page.text

    # Secrets: never in a label, the report, the page or the log.
    everything = served.get("/metrics").text + served.get("/report").text + page.text + served.stderr()
    assert TOKEN not in everything and PASSWORD not in everything

    # Held again: the endpoints keep serving the latest completed run while this one goes on.
    set_state(checks, "hold")
    wait_until(lambda: served.metrics()["mgn_run_in_progress"][()] == 1.0, what="a held run")
    assert served.get("/healthz").status_code == 503
    # SIGTERM in the middle of that run: it is stopped, the server shut down, exit 130.
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 130
    log = served.stderr()
    assert "Traceback" not in log and log.rstrip().endswith("mgn: stopped (interrupted)")
    with pytest.raises(httpx.TransportError):
        served.get("/healthz")


def test_silent_serves_only_the_health_status_code_on_a_remote_address(serve) -> None:
    served = serve("--silent", "--allow-remote", host="0.0.0.0")
    wait_until(lambda: served.get("/healthz").status_code == 200, what="healthz 200")
    assert served.get("/healthz").content == b""
    for path in ("/metrics", "/report", "/", "/nothing"):
        response = served.get(path)
        assert (response.status_code, response.content) == (404, b""), path
    assert "server" not in served.get("/healthz").headers
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(timeout=15) == 130


@pytest.mark.parametrize(("args", "expected"), [
    (["--listen", "0.0.0.0:9797"], "--listen '0.0.0.0:9797' is not a loopback address"),
    (["--set", "serve.listen=[::]:9797"], "serve.listen '[::]:9797' is not a loopback address"),
    (["--listen", "localhost"], "--listen 'localhost': expected HOST:PORT"),
    (["--interval", "0s"], "--interval '0s': must be more than 0 s"),
])
def test_what_cannot_be_served_is_one_line_and_exit_2(mgn, checks_dir, args: list[str], expected: str) -> None:
    directory = checks_dir(check_ok="def check_ok(): pass\n")
    run = mgn("verify", "serve", "--checks-dir", str(directory), *ISOLATED, *args, report=False)
    assert run.exit_code == 2
    assert run.stderr.startswith(f"mgn: error: {expected}") and run.stderr.count("\n") == 1, run.stderr


def test_an_address_in_use_is_one_line_and_exit_2(mgn, checks_dir) -> None:
    directory = checks_dir(check_ok="def check_ok(): pass\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = mgn("verify", "serve", "--listen", f"127.0.0.1:{port}", "--checks-dir", str(directory), *ISOLATED,
                  report=False)
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: --listen '127.0.0.1:{port}': cannot listen there (Address already in use)\n"

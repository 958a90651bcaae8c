"""`mgn lab up --cluster ID` starts a multi-cluster lab from the command line (what
`Lab(clusters=...)` does from Python), e.g. for `mgn federation deploy`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def _mgn(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mgn_verify", "lab", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=120)


def test_lab_up_with_extra_clusters(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = _mgn("up", "--detach", "--cluster", "lab-2", state=state)
    try:
        assert up.returncode == 0, up.stderr
        status = json.loads(_mgn("status", "--json", state=state).stdout)
        config = yaml.safe_load(Path(status["config_path"]).read_text())
        assert [c["id"] for c in config["clusters"]] == ["lab", "lab-2"]
        assert _mgn("fault", "add", "kubernetes.down", "--cluster", "lab-2", state=state).returncode == 0
    finally:
        _mgn("down", state=state)


def test_a_bad_extra_cluster_id_is_a_usage_error(tmp_path: Path) -> None:
    for bad in ("Lab_2", "lab"):
        proc = _mgn("up", "--cluster", bad, state=tmp_path / "state")
        assert proc.returncode == 2 and "--cluster" in proc.stderr, (bad, proc.stderr)

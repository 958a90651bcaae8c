"""The README's lifecycle walk-through (the first ```sh block under "### A walk through the
lifecycle, against the lab") runs as written, line by line, in one shell session's order: a bare
lab in the background, `export MGN_CONFIG=` the path it printed, install, a workspace's whole life,
a refusal, an audited override. HOME is sandboxed (the audit log lands there)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # a lab in the background and ~14 real `mgn` processes


def walkthrough() -> list[tuple[str, str]]:
    """``(command, comment)`` for each line of the block (continuation lines joined)."""
    section = (REPO / "README.md").read_text().split("\n### A walk through the lifecycle, against the lab\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    lines = []
    for raw in block.splitlines():
        if not raw.strip():
            continue
        command, _, comment = raw.partition(" #")
        lines.append((re.sub(r"\s+", " ", command).strip(), comment.strip()))
    return lines


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "mgn"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mgn_verify "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "MGN_LAB_STATE_DIR": str(tmp_path / "lab-state"), "NO_COLOR": "1"}
    env.pop("MGN_CONFIG", None)
    config = ""
    try:
        for command, comment in walkthrough():
            if command.startswith("export MGN_CONFIG="):
                assert config, "the lab's config path was not printed before the export line"
                env["MGN_CONFIG"] = config
                continue
            proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=tmp_path,
                                  timeout=180)
            expected = 1 if "refused" in comment else 0
            assert proc.returncode == expected, (command, proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
            if command.startswith("mgn lab up"):
                config = re.search(r"config:\s+(\S+)", proc.stdout + proc.stderr).group(1)  # type: ignore[union-attr]
            if "refused" in comment:
                assert "kubernetes.nodes.ready[lab]" in proc.stderr, proc.stderr[-3000:]
            if command.startswith("tail") and "audit.jsonl" in command:
                line = json.loads(proc.stdout)
                assert line["reason"].startswith("OPS-42") and line["overrides"], line
                assert line["overrides"][0]["id"] == "kubernetes.nodes.ready[lab]"
        assert (tmp_path / "preflight.json").exists()
    finally:
        subprocess.run([sys.executable, "-m", "mgn_verify", "lab", "down"], env=env, capture_output=True,
                       timeout=60)

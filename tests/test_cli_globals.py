"""The global options and the `version` command of GuildNet's existing `mgn` (contract doc §6.2)
work, so its scripts run unchanged: `mgn --api-url URL --token T --config PATH -v <command>`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mgn_verify._version import __version__


def _mgn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "MGN_CONFIG": "/dev/null"}
    return subprocess.run([sys.executable, "-m", "mgn_verify", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def test_version_command(tmp_path: Path) -> None:
    proc = _mgn("version", cwd=tmp_path)
    assert proc.returncode == 0 and __version__ in proc.stdout
    assert "version" in _mgn("--help", cwd=tmp_path).stdout


def test_global_options_reach_the_subcommands_and_the_token_stays_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("defaults: {cluster: from-file}\n")
    proc = _mgn("--api-url", "https://127.0.0.9:1", "--token", "s3cr3t-t0ken-value", "--config", str(config), "-v",
                "config", "show", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    values = {entry["key"]: entry for entry in shown} if isinstance(shown, list) else shown
    text = json.dumps(values)
    assert "https://127.0.0.9:1" in text and "from-file" in text
    assert "s3cr3t-t0ken-value" not in proc.stdout + proc.stderr

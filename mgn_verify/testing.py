"""A small kit for testing checks and plugins (ours and third parties').

``make_config`` gives a check function the ``config`` it would get in a real run, so a check
can be called directly in a unit test. ``run_verify`` runs the real ``mgn`` in a subprocess
with a JSON report and hands back the exit code, the output and the parsed report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._session import Session
from .config import Config

__all__ = ["VerifyRun", "make_config", "run_verify"]


def make_config(values: Mapping[str, Any] | None = None, *, plugins: Sequence[str] = (),
                env: Mapping[str, str] | None = None, config_path: str | None = None) -> Config:
    """The resolved config of a session with these setting overrides (typed values)."""
    session = Session(env if env is not None else {"MGN_CONFIG": os.devnull}, lambda message: None)
    loaded = session.load(plugins=list(plugins), checks_dirs=[], config_path=config_path or os.devnull,
                          settings={key: (value, False) for key, value in (values or {}).items()})
    return loaded.config


@dataclass(frozen=True, slots=True)
class VerifyRun:
    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def result(self, check_id: str) -> dict[str, Any]:
        """The JSON result of one check (KeyError if it did not run)."""
        assert self.report is not None, f"no JSON report; stderr: {self.stderr}"
        for result in self.report["results"]:
            if result["id"] == check_id:
                return dict(result)
        raise KeyError(check_id)

    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in (self.report or {}).get("results", [])}


def run_verify(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
               timeout: float = 120, command: str = "verify") -> VerifyRun:
    """Run ``mgn <command> ARGS --json <tmp>`` in a subprocess; the config defaults to none at all
    (``MGN_CONFIG=/dev/null``) unless ``env`` or ``args`` say otherwise."""
    with tempfile.TemporaryDirectory(prefix="mgn-verify-") as tmp:
        report_path = Path(tmp) / "report.json"
        full_env = {**os.environ, "MGN_CONFIG": os.devnull, **(env or {})}
        argv = [sys.executable, "-m", "mgn_verify", command, *args, "--json", str(report_path)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    return VerifyRun(proc.returncode, proc.stdout, proc.stderr, report)

"""Shared by the lifecycle command tests: run `mgn` in-process against a lab, read its one error line."""

from __future__ import annotations

from click.testing import CliRunner

from mgn_verify.cli import cli
from mgn_verify.lab import Lab
from tests.helpers import Run

__all__ = ["error_line", "mgn", "quick_operator"]


def mgn(lab: Lab, *args: str) -> Run:
    """``mgn ARGS --config <the lab's config>`` in-process (no JSON report)."""
    result = CliRunner().invoke(cli, [*args, "--config", str(lab.config_path)], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr, None)


def error_line(run: Run) -> str:
    """The one ``mgn: error:`` line of a failed command (and no traceback)."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("mgn: error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def quick_operator(lab: Lab, pending: float = 0.05, running: float = 0.2) -> None:
    """The lab's operator moves a Workspace to Pending/Running this fast (tests poll, never sleep)."""
    operator = lab.kube.state.operator
    operator.pending_delay, operator.running_delay = pending, running

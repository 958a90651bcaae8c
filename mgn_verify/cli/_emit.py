"""Writing reports: files atomically (temp file + rename), stdout last."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import ReportWriteError
from .._exitcodes import ExitCode
from .._report import RunReport
from ..config import Config
from ..reporters import Reporter, ReporterContext, ReporterRegistry

__all__ = ["Output", "emit", "stdout_context", "write_atomically"]


@dataclass(frozen=True, slots=True)
class Output:
    format: str
    path: str | None = None   # None: stdout


def stdout_context(config: Config, verbose: int) -> ReporterContext:
    stream = sys.stdout
    tty = stream.isatty()
    color = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    return ReporterContext(config, stream, tty, color, verbose)


def write_atomically(path: str, text: str) -> None:
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a path component is a file
        raise ReportWriteError(path, f"{exc.filename} is not a directory") from None
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from None


def emit(report: RunReport, outputs: list[Output], registry: ReporterRegistry, config: Config,
         stdout_reporters: dict[str, Reporter], verbose: int) -> None:
    """Write file reports first (a failure turns the exit code into 2 and is shown on the
    console), then print the stdout reports."""
    for output in outputs:
        if output.path is None:
            continue
        reporter = registry.create(output.format, ReporterContext(config, None, False, False, verbose))
        text = _render(reporter, output, report)
        try:
            if text is not None:
                write_atomically(output.path, text)
        except ReportWriteError as exc:
            _fail(report, str(exc))
    for output in outputs:
        if output.path is None:
            reporter = stdout_reporters.get(output.format) or registry.create(
                output.format, stdout_context(config, verbose))
            text = _render(reporter, output, report)
            sys.stdout.write(text if text is not None else "")
    sys.stdout.flush()


def _render(reporter: Reporter, output: Output, report: RunReport) -> str | None:
    """A reporter plugin that crashes costs its own report, not the others (exit 2)."""
    try:
        return reporter.render(report)
    except Exception as exc:  # third-party reporter code
        text = str(exc).strip().splitlines()
        _fail(report, f"reporter {output.format!r} failed: {type(exc).__name__}" + (f": {text[0]}" if text else ""))
        return None


def _fail(report: RunReport, message: str) -> None:
    report.errors.append(message)
    report.exit_code = ExitCode.USAGE_ERROR

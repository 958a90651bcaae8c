"""Emitting reports, the one way: redact, render through the registry, write files, print stdout.

Report files are written safely (see ``write_report``); with a machine-readable format on
stdout, ``StdoutGuard`` keeps everything else off the real stdout for the whole run.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

from .._exceptions import ReportWriteError, UsageError
from .._exitcodes import ExitCode
from .._report import RunReport
from .._reporting import Reporter, ReporterContext, ReporterRegistry
from ..config import Config

__all__ = ["HUMAN_FORMAT", "Output", "StdoutGuard", "emit", "interrupting_signals", "resolve_outputs",
           "stdout_context", "write_report"]

#: The one human format; any other format on stdout is machine-readable (stdout is guarded).
HUMAN_FORMAT = "console"


@dataclass(frozen=True, slots=True)
class Output:
    format: str
    path: str | None = None   # None: stdout; else an absolute path, resolved when the command started


def resolve_outputs(formats: Sequence[str], files: Sequence[tuple[str, str, str | None]]) -> list[Output]:
    """The requested reports: ``-o FORMAT`` on stdout, then ``(option, format, path)`` files.

    ``-`` means stdout; a relative path is made absolute now, so a check that changes the working
    directory cannot move it; an empty path, or two reports naming one file (however spelt),
    is a ``UsageError`` before anything runs."""
    outputs = [Output(f) for f in formats]
    seen: dict[tuple[int, int] | str, str] = {}
    for option, fmt, path in files:
        if path is None:
            continue
        if path == "-":
            outputs.append(Output(fmt))
            continue
        if not path.strip():
            raise UsageError(f"{option} needs a path (use - for stdout)")
        absolute = os.path.abspath(os.path.expanduser(path))
        key = _file_key(absolute)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {path!r}: give each report its own path")
        seen[key] = option
        outputs.append(Output(fmt, absolute))
    return outputs


def _file_key(path: str) -> tuple[int, int] | str:
    """One key per file: (device, inode) when it exists (hard links, symlinks), else its real path."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def stdout_context(config: Config, verbose: int, stream: TextIO | None = None) -> ReporterContext:
    stream = stream or sys.stdout
    tty = stream.isatty()
    color = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    return ReporterContext(config, stream, tty, color, verbose)


def emit(report: RunReport, outputs: list[Output], registry: ReporterRegistry, config: Config, *,
         stdout: TextIO | None = None, stdout_reporters: dict[str, Reporter] | None = None,
         verbose: int = 0) -> None:
    """Redact the report, write file reports (a failure is a one-line error and exit 2), then
    print the stdout reports. Formats the registry lacks are left out (a failed load)."""
    stdout = stdout or sys.stdout
    report.redact(config.redactor)
    for output in outputs:
        if output.path is None or output.format not in registry.names():
            continue
        reporter = registry.create(output.format, ReporterContext(config, None, False, False, verbose))
        text = _render(reporter, output, report)
        try:
            if text is not None:
                write_report(output.path, text)
        except ReportWriteError as exc:
            _fail(report, str(exc))
    for output in outputs:
        if output.path is None and output.format in registry.names():
            reporter = (stdout_reporters or {}).get(output.format) or registry.create(
                output.format, stdout_context(config, verbose, stdout))
            text = _render(reporter, output, report)
            stdout.write(text if text is not None else "")
    stdout.flush()


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


# -- files -------------------------------------------------------------------------------------

def write_report(path: str, text: str) -> None:
    """Write a report file. A symlink is followed (its target is replaced, the link stays); a
    path that is not a regular file (a device such as /dev/stdout, a FIFO) is written directly,
    never replaced; a regular file is replaced atomically by a temp file created with mode
    0666 minus the umask. Any ``OSError`` becomes a one-line ``ReportWriteError``."""
    try:
        st: os.stat_result | None = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from None
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            _replace_atomically(Path(os.path.realpath(path)), text, path)
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from None


def _replace_atomically(target: Path, text: str, shown: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a path component is a file
        raise ReportWriteError(shown, f"{exc.filename} is not a directory") from None
    _remove_stale_temps(target)
    # The pid in the name lets the next write remove it if this process dies (kill -9) midway.
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)  # the umask applies
    try:
        with interrupting_signals(signal.SIGTERM, signal.SIGHUP), os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temps(target: Path) -> None:
    """Temp files of this report left by a writer that no longer runs."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]+\.tmp")
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and not _alive(int(match[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def interrupting_signals(*signals: int) -> Iterator[None]:
    """While active, these signals raise ``KeyboardInterrupt`` (as Ctrl-C does) instead of
    killing the process, so ``finally`` blocks run: reports get written, temp files removed.
    Only signals left at their default action, and only on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = [sig for sig in signals if signal.getsignal(sig) == signal.SIG_DFL]
    for sig in replaced:
        signal.signal(sig, _raise_interrupt)
    try:
        yield
    finally:
        for sig in replaced:
            if signal.getsignal(sig) == _raise_interrupt:
                signal.signal(sig, signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# -- stdout --------------------------------------------------------------------------------------

class StdoutGuard:
    """With a machine-readable report due on stdout, file descriptor 1 points at stderr while
    the guard is active, and ``stream`` writes to the original stdout: a ``print``, a subprocess
    or C code writing to fd 1 cannot corrupt the report. Inactive (``stream`` is ``sys.stdout``)
    when stdout is human-only or not a real file descriptor (e.g. captured by a test runner)."""

    def __init__(self, outputs: Sequence[Output]) -> None:
        self._wanted = any(o.path is None and o.format != HUMAN_FORMAT for o in outputs)
        self._fd = -1
        self._saved = -1
        self.stream: TextIO = sys.stdout

    def __enter__(self) -> StdoutGuard:
        self.stream = sys.stdout
        if not self._wanted:
            return self
        try:
            fd, err = sys.stdout.fileno(), sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # not real descriptors (a test runner's capture)
            return self
        sys.stdout.flush()
        self._saved = os.dup(fd)  # not inheritable: a subprocess never gets the real stdout
        os.dup2(err, fd)
        self._fd = fd
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        self.stream = open(os.dup(self._saved), "w", encoding=encoding, closefd=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
            sys.stdout.flush()
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        os.dup2(self._saved, self._fd)
        os.close(self._saved)
        self._fd = self._saved = -1
        self.stream = sys.stdout

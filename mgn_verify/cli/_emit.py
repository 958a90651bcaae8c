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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TextIO

from .._exceptions import ReportWriteError, UsageError
from .._exitcodes import ExitCode
from .._report import RunReport
from .._reporting import Reporter, ReporterContext, ReporterRegistry
from .._text import describe_exception
from ..config import Config, Redactor
from ._signals import interrupting_signals

__all__ = ["HUMAN_FORMAT", "Output", "StdoutGuard", "append_report", "emit", "resolve_outputs", "stdout_context",
           "write_report"]

#: The one human format; any other format on stdout is machine-readable (stdout is guarded).
HUMAN_FORMAT = "console"


@dataclass(frozen=True, slots=True)
class Output:
    format: str
    path: str | None = None   # None: stdout; else an absolute path, resolved when the command started
    append: bool = False      # the file is $GITHUB_STEP_SUMMARY: appended to, never replaced


def resolve_outputs(formats: Sequence[str], files: Sequence[tuple[str, str, str | None]]) -> list[Output]:
    """The requested reports: ``-o FORMAT`` on stdout, then ``(option, format, path)`` files.

    ``-`` means stdout; a relative path is made absolute now, so a check that changes the working
    directory cannot move it. Before anything runs, a ``UsageError``: an empty path, or two
    reports to one destination — one file however spelt, or stdout (``-o``, ``-``,
    ``/dev/stdout``) more than once: their texts would run into each other."""
    outputs = [Output(f) for f in formats]
    seen: dict[tuple[int, int] | str, str] = {}
    on_stdout = [f"-o {f}" for f in formats]
    for option, fmt, path in files:
        if path is None:
            continue
        if not path.strip():
            raise UsageError(f"{option} needs a path (use - for stdout)")
        if path.endswith(("/", os.sep)) or os.path.isdir(os.path.expanduser(path)):
            raise UsageError(f"{option} {path!r} is a directory: name the report file (e.g. {path.rstrip('/')}/report)")
        if path == "-" or _names_stdout(path):
            on_stdout.append(f"{option} {path}")
            outputs.append(Output(fmt))
            continue
        absolute = os.path.abspath(os.path.expanduser(path))
        key = _file_key(absolute)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {path!r}: give each report its own path")
        seen[key] = option
        outputs.append(Output(fmt, absolute, key == _step_summary_key()))
    if len(on_stdout) > 1:
        raise UsageError(f"{' and '.join(on_stdout)} would all write to stdout: one report per destination")
    return outputs


#: Names of this process's standard output (``-`` is the documented spelling).
_STDOUT_NAMES = frozenset({"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def _names_stdout(path: str) -> bool:
    """Whether ``path`` (or a chain of symlinks from it) names this process's stdout."""
    current = os.path.abspath(os.path.expanduser(path))
    for _ in range(40):  # as many links as the kernel follows
        if current in _STDOUT_NAMES or current == f"/proc/{os.getpid()}/fd/1":
            return True
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or gone): the end of the chain
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return False


def _step_summary_key() -> tuple[int, int] | str | None:
    """The file GitHub Actions collects this step's job summary from: other steps and tools
    append to it too, so a report written there is appended (once), never replaced."""
    path = os.environ.get("GITHUB_STEP_SUMMARY", "")
    return _file_key(os.path.abspath(os.path.expanduser(path))) if path.strip() else None


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
         verbose: int = 0, interrupted: Callable[[], bool] = lambda: False) -> None:
    """Write every requested report, all stating the exit code the process ends with.

    The report is redacted, then every report is rendered before anything is written, so a
    reporter that crashes is an error (exit 2) the others state. Files are written next, stdout
    last. The exit code is decided once: ``interrupted()`` true (Ctrl-C/SIGTERM since the run)
    makes it 130, which nothing overrides; a reporter or write failure makes 0/1/3/4 into 2. When
    one of these comes while the files are being written, the regular files already written are
    written again (atomically), so they agree with the exit code; a report that failed to be
    written cannot say so itself, and stdout, a FIFO or a device are written once. A signal
    after the stdout report started changes nothing. Every error added is redacted.
    Formats the registry lacks are left out (a failed load)."""
    stdout = stdout or sys.stdout
    emission = _Emission(report, config.redactor, interrupted)
    report.redact(config.redactor)
    emission.poll()
    items: list[_Item] = []
    for output in outputs:
        if output.format not in registry.names():
            continue
        made = (stdout_reporters or {}).get(output.format) if output.path is None else None
        context = (stdout_context(config, verbose, stdout) if output.path is None
                   else ReporterContext(config, None, False, False, verbose))
        items.append(_Item(output, made or emission.create(registry, output.format, context)))
    files = [item for item in items if item.output.path is not None]
    emission.write_files(files, items)
    for item in items:
        if item.output.path is None:
            emission.write_stdout(item, stdout)
            emission.write_files(files, items, poll=False)  # stdout failed: the files must say so


@dataclass(slots=True)
class _Item:
    """One requested report on its way out."""

    output: Output
    reporter: Reporter | None      # None: its reporter could not be created (an error already)
    text: str | None = None
    rendered: int = -1             # the emission's ``version`` ``text`` was rendered from
    written: int = -1              # the version last written to its file (-1: not yet)
    rewritable: bool = True        # a regular file, replaced whole; not a stream (FIFO, device)


class _Emission:
    """The report's state while it is emitted: ``version`` moves whenever an error or an
    interruption changes what the reports must say."""

    def __init__(self, report: RunReport, redactor: Redactor, interrupted: Callable[[], bool]) -> None:
        self.report = report
        self._redactor = redactor
        self._interrupted = interrupted
        self.version = 0

    def fail(self, message: str) -> None:
        """An error joins the report late: redacted like the rest; exit 2 unless interrupted."""
        message = self._redactor.text(message)
        if message not in self.report.errors:
            self.report.errors.append(message)
        if self.report.exit_code is not ExitCode.INTERRUPTED:
            self.report.exit_code = ExitCode.USAGE_ERROR
        self.version += 1

    def poll(self) -> None:
        if not self.report.interrupted and self._interrupted():
            self.report.mark_interrupted("interrupted while the reports were being written")
            self.version += 1

    def create(self, registry: ReporterRegistry, name: str, context: ReporterContext) -> Reporter | None:
        try:
            return registry.create(name, context)
        except Exception as exc:  # a third-party reporter's factory
            self.fail(f"reporter {name!r} failed: {describe_exception(exc)}")
            return None

    def render_all(self, items: list[_Item]) -> None:
        """Every report's text rendered from the current state (a crash changes the state, so
        the others are rendered again: at most once per crashing reporter)."""
        while True:
            version = self.version
            for item in items:
                self._render(item)
            if version == self.version:
                return

    def _render(self, item: _Item) -> None:
        if item.reporter is None or item.rendered == self.version:
            return
        version = self.version
        try:
            item.text = item.reporter.render(self.report)
            item.rendered = version
        except Exception as exc:  # third-party reporter code: costs its own report only
            item.reporter, item.text = None, None
            self.fail(f"reporter {item.output.format!r} failed: {describe_exception(exc)}")

    def write_files(self, files: list[_Item], items: list[_Item], *, poll: bool = True) -> None:
        """Write each file report from the current state, again if the state changed after it
        was written (a regular file only), until every file states the final state."""
        while True:
            if poll:
                self.poll()
            self.render_all(items)
            due = [item for item in files if item.reporter is not None and item.written != self.version
                   and (item.written < 0 or item.rewritable)]
            if not due:
                return
            for item in due:
                if item.rendered != self.version:
                    break  # an error or a signal came: render again first
                self._write_file(item)

    def _write_file(self, item: _Item) -> None:
        assert item.output.path is not None and item.text is not None
        try:
            write = append_report if item.output.append else write_report
            item.rewritable = write(item.output.path, item.text)
            item.written = item.rendered
        except ReportWriteError as exc:
            item.reporter = None
            self.fail(str(exc))

    def write_stdout(self, item: _Item, stdout: TextIO) -> None:
        self.poll()  # the last moment a signal changes the outcome
        self.render_all([item])
        if item.text is None:
            return
        try:
            stdout.write(item.text)
            stdout.flush()
        except (OSError, ValueError) as exc:  # a closed pipe, a closed stream
            self.fail(f"cannot write report to stdout: {describe_exception(exc)}")


# -- files -------------------------------------------------------------------------------------

def write_report(path: str, text: str) -> bool:
    """Write a report file. A symlink is followed (its target is replaced, the link stays); a
    path that is not a regular file (a device such as /dev/stdout, a FIFO) is written directly,
    never replaced; a regular file is replaced atomically by a temp file created with mode
    0666 minus the umask. Any ``OSError`` becomes a one-line ``ReportWriteError``.

    :returns: whether a regular file was replaced (so writing it again replaces it again).
    """
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
            return False
        _replace_atomically(Path(os.path.realpath(path)), text, path)
        return True
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from None


def append_report(path: str, text: str) -> bool:
    """Append a report to a file (created if missing), after a blank line when the file
    already has text, so Markdown blocks stay apart. Written once: returns ``False``."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab+") as handle:  # O_APPEND: every write lands at the end
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode) and handle.seek(0, os.SEEK_END):
                handle.seek(-1, os.SEEK_END)
                text = ("\n" if handle.read(1) == b"\n" else "\n\n") + text
            handle.write(text.encode("utf-8"))
        return False
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

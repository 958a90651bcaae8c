"""``MgnKit``: write check files and a config into a directory, run ``mgn`` on them, read the report.

Imports only the standard library: the CLI, click and PyYAML are imported when a run or a config
mapping needs them (this module is reached from the pytest plugin, loaded into every pytest run).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MgnKit", "MgnRunTimeout", "VerifyRun", "run_mgn_process"]

#: ``mgn verify`` subcommands that inspect the catalogue: they load checks but write no run report.
_CATALOGUE_COMMANDS = ("list", "explain", "graph")
Env = Mapping[str, str | None]
#: How much of each stream a timeout's message quotes (its end: where the run hung).
_TAIL_CHARS = 2000
#: How many check ids ``VerifyRun.result`` names when the one asked for did not run.
_IDS_SHOWN = 20


class MgnRunTimeout(TimeoutError):
    """An ``mgn`` process that did not finish in time (it was killed); ``stdout``/``stderr``
    hold what it wrote until then."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True, slots=True)
class VerifyRun:
    """One ``mgn`` run: exit code, output and the parsed JSON report (None when none was written)."""

    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def result(self, check_id: str) -> dict[str, Any]:
        """The JSON result of one check (KeyError naming the ids that ran if it did not run)."""
        assert self.report is not None, f"no JSON report; stderr: {self.stderr}"
        for result in self.report["results"]:
            if result["id"] == check_id:
                return dict(result)
        ran = [str(result["id"]) for result in self.report["results"]]
        more = f" (and {len(ran) - _IDS_SHOWN} more)" if len(ran) > _IDS_SHOWN else ""
        listed = ", ".join(ran[:_IDS_SHOWN]) or "none"
        raise KeyError(f"{check_id!r} did not run; the checks that ran: {listed}{more}")

    def statuses(self) -> dict[str, str]:
        """Check id -> status (``pass``, ``fail``, ``skip``, ...) of every result."""
        return {r["id"]: r["status"] for r in (self.report or {}).get("results", [])}

    def messages(self) -> dict[str, str]:
        """Check id -> the message of its result."""
        return {r["id"]: r.get("message", "") for r in (self.report or {}).get("results", [])}


class MgnKit:
    """A scratch directory to run ``mgn`` in: ``checks/`` for check files, ``mgn.yaml`` for the
    config, ``report-N.json`` for the reports. Runs are in-process (fast; hooks can be recorded)
    or, with ``process=True``, a real ``python -m mgn_verify`` process; both run in ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checks_dir = self.path / "checks"
        self.config_path = self.path / "mgn.yaml"
        self._reports = itertools.count()

    def __repr__(self) -> str:
        return f"MgnKit({str(self.path)!r})"

    def write_checks(self, **modules: str) -> Path:
        """``write_checks(check_disk="source")`` writes ``checks/check_disk.py`` (dedented)."""
        for name, source in modules.items():
            if not name.startswith("check_"):
                raise ValueError(f"check module {name!r}: the name must start with 'check_' "
                                 "(only check_*.py files are loaded from a checks dir)")
            self.checks_dir.mkdir(exist_ok=True)
            (self.checks_dir / f"{name}.py").write_text(textwrap.dedent(source))
        # A file rewritten within the same second at the same size would pass the bytecode
        # cache's mtime+size test and run the old code: drop the cache.
        for cache in self.checks_dir.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return self.checks_dir

    def write_config(self, config: Mapping[str, Any] | str) -> Path:
        """Write ``mgn.yaml``: YAML text as given (dedented), or a mapping dumped as YAML."""
        if isinstance(config, str):
            text = textwrap.dedent(config)
        elif not isinstance(config, Mapping):  # None would be dumped as "null": not a config
            raise TypeError("write_config() takes a mapping (dumped as YAML) or YAML text (str), "
                            f"not {type(config).__name__}")
        else:
            import yaml

            text = yaml.safe_dump(_plain(config), sort_keys=False)
        self.config_path.write_text(text)
        return self.config_path

    def verify(self, *args: str, process: bool = False, env: Env | None = None,
               timeout: float = 120.0) -> VerifyRun:
        """Run ``mgn verify ARGS`` with the kit's checks dir and config, and a JSON report
        (``--json`` added unless given; ``list``/``explain``/``graph`` write none)."""
        argv = list(args)
        extra: list[str] = []
        if self.checks_dir.is_dir():
            extra += ["--checks-dir", str(self.checks_dir)]
        if self.config_path.exists() and not _has_option(argv, "--config"):
            extra += ["--config", str(self.config_path)]
        report: Path | None = None
        if not (argv and argv[0] in _CATALOGUE_COMMANDS):
            given = _option_value(argv, "--json")
            if given is None:
                report = self._next_report()
                extra += ["--json", str(report)]
            elif given != "-":
                report = self.path / given  # an absolute path stays itself
        cut = argv.index("--") if "--" in argv else len(argv)  # options go before a "--"
        run = self.run("verify", *argv[:cut], *extra, *argv[cut:], process=process, env=env, timeout=timeout)
        if report is not None and report.is_file():
            return _with_report(run, json.loads(report.read_text()))
        if _option_value(argv, "--json") == "-":
            with contextlib.suppress(ValueError):
                return _with_report(run, json.loads(run.stdout))
        return run

    def run(self, *args: str, process: bool = False, env: Env | None = None, timeout: float = 120.0) -> VerifyRun:
        """Run any ``mgn ARGS``; ``MGN_CONFIG`` is the kit's config if written, else none at all
        (``os.devnull``: the user's own config is never read). ``env`` adds to the environment
        (a None value removes a variable); ``timeout`` bounds process runs only (``MgnRunTimeout``,
        a ``TimeoutError`` with the output so far, once the process is killed)."""
        full_env: dict[str, str | None] = {
            "MGN_CONFIG": str(self.config_path) if self.config_path.exists() else os.devnull, **(env or {})}
        if process:
            return self._run_process(list(args), full_env, timeout)
        return self._run_in_process(list(args), full_env)

    def _next_report(self) -> Path:
        while True:
            path = self.path / f"report-{next(self._reports)}.json"
            if not path.exists():
                return path

    def _run_process(self, argv: list[str], env: dict[str, str | None], timeout: float) -> VerifyRun:
        merged = {**os.environ, **env}
        proc_env = {key: value for key, value in merged.items() if value is not None}
        code, out, err = run_mgn_process(argv, proc_env, self.path, timeout)
        return VerifyRun(code, out, err, None)

    def _run_in_process(self, argv: list[str], env: dict[str, str | None]) -> VerifyRun:
        """click's runner isolates stdin/stdout/stderr and the environment; the command goes
        through ``mgn_verify.cli.main`` (as the ``mgn`` script does), so errors are the same
        one line and exit code as in a process."""
        from click.testing import CliRunner

        from mgn_verify.cli import main

        runner = _runner(CliRunner)
        with _environ_kept(), contextlib.chdir(self.path), runner.isolation(env=env) as streams:
            code = _exit_code(main, argv)
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = streams[0].getvalue(), streams[1].getvalue()
        return VerifyRun(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), None)


def run_mgn_process(argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None,
                    timeout: float) -> tuple[int, str, str]:
    """Run ``python -m mgn_verify ARGV``: (exit code, stdout, stderr). Past ``timeout`` its process
    group is killed (a check may have started processes that hold the pipes open) and
    ``MgnRunTimeout`` says so, with the output so far."""
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(env), cwd=cwd,
                            start_new_session=os.name == "posix")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        raise MgnRunTimeout(_timeout_message(argv, timeout, out, err), out, err) from None
    except BaseException:  # Ctrl-C in the test run: leave no mgn process behind
        _kill(proc)
        proc.wait()
        raise
    return proc.returncode, out, err


def _kill(proc: subprocess.Popen[str]) -> None:
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()


def _timeout_message(argv: Sequence[str], timeout: float, out: str, err: str) -> str:
    def tail(text: str) -> str:
        text = text.rstrip()
        return ("..." + text[-_TAIL_CHARS:]) if len(text) > _TAIL_CHARS else (text or "(nothing)")

    # The command only, not its arguments: a --set or --token value may be a secret.
    command = " ".join(["mgn", *argv[:1]]) if argv[:1] and not argv[0].startswith("-") else "mgn"
    return (f"{command} did not finish within {timeout:g} s (killed); its output so far:\n"
            f"stdout: {tail(out)}\nstderr: {tail(err)}")


def _runner(cls: Any) -> Any:
    """click < 8.2 mixes stderr into stdout unless told not to; later versions keep them apart."""
    try:
        return cls(mix_stderr=False)
    except TypeError:
        return cls()


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """mgn's global options (``--config``, ``--api-url``, ``--token``) export themselves to
    ``os.environ``: in-process, that must not outlive the run and leak into the next test."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def _exit_code(main: Any, argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")  # what the interpreter does with SystemExit("text")
        return 1
    return 0


def _with_report(run: VerifyRun, report: Any) -> VerifyRun:
    return VerifyRun(run.exit_code, run.stdout, run.stderr, report if isinstance(report, dict) else None)


def _has_option(argv: Sequence[str], name: str) -> bool:
    return any(arg == name or arg.startswith(name + "=") for arg in argv)


def _option_value(argv: Sequence[str], name: str) -> str | None:
    """The value of ``NAME VALUE`` or ``NAME=VALUE`` in ``argv`` (the last one wins, as in click)."""
    value = None
    for arg, following in zip(argv, [*argv[1:], None], strict=False):  # (no args: no pairs)
        if arg == name and following is not None:
            value = following
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
    return value


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, which ``yaml.safe_dump`` accepts."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


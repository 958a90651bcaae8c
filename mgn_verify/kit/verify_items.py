"""``pytest --mgn-verify=SELECTION``: mgn checks as pytest items, run with mgn's semantics.

SELECTION is ``all``, layers, or check ids/globs, comma-separated. Each selected check (and each
check it requires) is an item ``mgn-verify::<check id>``, in mgn's report order, marked
``mgn_verify``. The first item to run starts ONE mgn run of every item left after ``-k``/``-m``
(their requirements included, run first, checks concurrently, as ``mgn verify`` runs them);
each item then reports its own result: ``pass`` passes, ``warn`` passes with an
``MgnCheckWarning``, ``skip`` and ``blocked`` are skipped (``blocked by <root>: <its message>``),
``fail`` and ``error`` fail showing status, message and remediation, ``waived`` is ``xfail``.
``--collect-only`` loads the checks and runs none; pytest's ``-x`` is mgn's ``--fail-fast``.
The run's own warnings are ``MgnRunWarning``s issued when the session ends (an ``error`` filter on
them, like the run's errors, fails the session); pytest-xdist (``-n``) is refused.

Imported into every pytest run: only pytest and the standard library at import; the engine
(``_verify_run``) is imported once ``--mgn-verify`` is given.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._warning import MgnCheckWarning, MgnRunWarning

if TYPE_CHECKING:
    from ._verify_run import CheckRow, VerifyState

__all__ = ["MgnCheckItem", "MgnVerifyCollector"]

NAME = "mgn-verify"
MARKER = "mgn_verify"
_STATE = pytest.StashKey["VerifyState"]()
_NEEDS_SELECTION = (("--mgn-config", "mgn_config"), ("--mgn-checks-dir", "mgn_checks_dirs"),
                    ("--mgn-set", "mgn_set"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mgn-verify", "mgn-verify: preflight checks as test items")
    group.addoption("--mgn-verify", dest="mgn_verify", metavar="SELECTION",
                    help="Run these mgn checks as test items: all, layers, or check ids/globs, comma-separated "
                         "(e.g. system,network or 'system.swap*').")
    group.addoption("--mgn-config", dest="mgn_config", metavar="PATH",
                    help="mgn config file (default: $MGN_CONFIG or ~/.metaguildnet/config.yaml).")
    group.addoption("--mgn-checks-dir", dest="mgn_checks_dirs", action="append", default=[], metavar="DIR",
                    help="Also load every check_*.py below DIR (repeatable).")
    group.addoption("--mgn-set", dest="mgn_set", action="append", default=[], metavar="KEY=VALUE",
                    help="Override one mgn setting, e.g. --mgn-set system.min_cpus=4 (repeatable).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: an mgn check collected by --mgn-verify")
    selection: str | None = config.getoption("mgn_verify")
    if selection is None:
        for option, dest in _NEEDS_SELECTION:
            if config.getoption(dest):
                raise pytest.UsageError(f"{option} needs --mgn-verify=SELECTION")
        return
    if config.getoption("numprocesses", None) or hasattr(config, "workerinput"):
        raise pytest.UsageError("--mgn-verify cannot run under pytest-xdist (-n): every worker would run "
                                "the whole selection; run it without -n (e.g. in a separate pytest call)")
    from .._exceptions import MgnVerifyError
    from ._verify_run import VerifyOptions, VerifyState, override_problem, selection_words

    try:
        selection_words(selection)
    except MgnVerifyError as exc:
        raise pytest.UsageError(str(exc)) from None
    for pair in config.getoption("mgn_set"):
        problem = override_problem(pair)
        if problem is not None:
            raise pytest.UsageError(f"--mgn-set {problem}")
    config.stash[_STATE] = VerifyState(VerifyOptions(
        selection, config.getoption("mgn_config"), tuple(config.getoption("mgn_checks_dirs")),
        tuple(config.getoption("mgn_set")), fail_fast=config.getoption("maxfail") == 1))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the checks before pytest's own ``-k``/``-m`` deselection (which runs later in this
    hook), first: preflight runs before the suite. A loading error is a collection error."""
    if _STATE not in config.stash:
        return
    collector = MgnVerifyCollector.from_parent(session, name=NAME, nodeid=NAME)
    items[:0] = list(session.genitems(collector))


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state is not None:  # the run covers exactly the items left after deselection
        state.remaining = [item.row.id for item in session.items if isinstance(item, MgnCheckItem)]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """mgn's warnings, outside any item (inside pytest's warning capture for the session end, so
    they reach its warnings summary); the run's errors, and a warning an ``error`` filter turned
    into one, fail the session as they make ``mgn verify`` exit 2; so does a requirement that
    failed outside the items left after ``-k``/``-m`` (``mgn verify`` exits 1: no green run)."""
    state = _state(session.config)
    if state is None:
        return
    for message in state.take_warnings():
        text = message if message.startswith("mgn: ") else f"mgn: warning: {message}"
        try:
            warnings.warn_explicit(MgnRunWarning(text), MgnRunWarning, NAME, 0)  # located at mgn, not our code
        except MgnRunWarning:
            state.errors.append(text)
    passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if (state.errors or state.required_failures) and session.exitstatus in passing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = _state(config)
    if state is None:
        return
    for title, lines in (("the mgn run failed", state.errors),
                         ("required checks failed outside the selection", state.required_failures)):
        if lines:
            terminalreporter.write_sep("=", f"mgn-verify: {title}", red=True)
            for line in lines:
                terminalreporter.line(line, red=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A skipped check's location is the check's own ``path:line`` (``-rs``: ``SKIPPED [1]
    checks/check_api.py:12: api.answers: reason``; JUnit's skip text), not the line of our code
    that called ``pytest.skip``; a check without a source line keeps its node id (and no line)."""
    report = yield
    if isinstance(item, MgnCheckItem) and report.skipped and isinstance(report.longrepr, tuple):
        path, line = item._source()
        # The id leads the reason: a file holds many checks, and -rs shows only location and reason.
        head, sep, reason = report.longrepr[2].partition("Skipped: ")
        reason = f"{head}{sep}{item.name}: {reason}" if sep and not head else f"{item.name}: {report.longrepr[2]}"
        report.longrepr = (str(path), line, reason) if line else (item.nodeid, None, reason)
    return report


class CheckFailed(Exception):
    """A check ended ``fail`` or ``error`` (or the mgn run could not start): the text is the report."""


class MgnVerifyCollector(pytest.Collector):
    """The selected checks; loading them (plugins, checks dirs, config) happens here."""

    def collect(self) -> Iterator[pytest.Item]:
        rows = self.config.stash[_STATE].collect()
        for row, name in zip(rows, _unique([row.shown for row in rows]), strict=True):
            yield MgnCheckItem.from_parent(self, name=name, row=row)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from .._exceptions import MgnVerifyError

        if isinstance(excinfo.value, MgnVerifyError | Warning):  # one line naming the culprit
            return _Line(_one_line(excinfo.value))
        return super().repr_failure(excinfo)


class MgnCheckItem(pytest.Item):
    """One mgn check; ``row`` is what the loaded session knows of it."""

    def __init__(self, *, row: CheckRow, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.row = row
        self.add_marker(MARKER)
        if _junit_allows_properties(self.config):  # xunit2 has no per-test properties
            self.user_properties += [("mgn_layer", row.layer), ("mgn_severity", row.severity)]

    def runtest(self) -> None:
        outcome = self.config.stash[_STATE].outcome(self.row.id)  # the first item runs them all
        if outcome.output:
            self.add_report_section("call", "mgn output", outcome.output)
        if outcome.kind == "warned":
            path, line = self._source()
            warnings.warn_explicit(MgnCheckWarning(outcome.text), MgnCheckWarning, str(path), line or 0)
        elif outcome.kind == "skipped":
            pytest.skip(outcome.text)
        elif outcome.kind == "xfailed":
            pytest.xfail(outcome.text)
        elif outcome.kind == "failed":
            raise CheckFailed(outcome.text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):  # mgn's own words, not a traceback of ours
            return str(excinfo.value)
        if isinstance(excinfo.value, Warning):  # -W error turned one into an error
            return _one_line(excinfo.value)
        if isinstance(excinfo.value, pytest.xfail.Exception):  # waived: pytest shows the reason
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        path, line = self._source()
        # Not the id itself: pytest would print a domain that ends the node id with its dots as "::".
        return path, (line - 1 if line else None), f"check {self.name}"

    def _source(self) -> tuple[Path, int | None]:
        path, _, line = self.row.source.rpartition(":")
        if not path or not line.isdigit():
            return self.path, None
        return Path(path), int(line)


class _Line:
    """A collection error as one line, also in pytest's short summary (``ERROR mgn-verify - mgn:
    error: ...``), which reads ``reprcrash.message``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reprcrash = self

    @property
    def message(self) -> str:
        return self.text

    def toterminal(self, tw: Any) -> None:
        tw.line(self.text)

    def __str__(self) -> str:
        return self.text


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("mgn: "):  # one of mgn's warnings, already saying what it is
        return text
    return f"mgn: {'warning' if isinstance(exc, Warning) else 'error'}: {text}"


def _state(config: pytest.Config) -> VerifyState | None:
    """The run of this pytest session; None without ``--mgn-verify``."""
    return config.stash.get(_STATE, None)


def _unique(names: list[str]) -> list[str]:
    """Item names, the second of two equal ones (two ids redacting to ``x[***]``) suffixed ``#2``:
    pytest needs unique node ids."""
    unique: list[str] = []
    used: set[str] = set()
    for name in names:
        candidate, count = name, 1
        while candidate in used:
            count += 1
            candidate = f"{name}#{count}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def _junit_allows_properties(config: pytest.Config) -> bool:
    try:
        return str(config.getini("junit_family")) != "xunit2"
    except ValueError:  # -p no:junitxml
        return False

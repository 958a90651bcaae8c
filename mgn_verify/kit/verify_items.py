"""``pytest --mgn-verify=SELECTION``: mgn checks as pytest items, run with mgn's semantics.

SELECTION is ``all``, layers, or check ids/globs, comma-separated. Each selected check (and each
check it requires) is an item ``mgn-verify::<check id>``, in mgn's report order, marked
``mgn_verify``. The first item to run starts ONE mgn run of every item left after ``-k``/``-m``
(their requirements included, run first, checks concurrently, as ``mgn verify`` runs them);
each item then reports its own result: ``pass`` passes, ``warn`` passes with an
``MgnCheckWarning``, ``skip`` and ``blocked`` are skipped (``blocked by <root>: <its message>``),
``fail`` and ``error`` fail showing status, message and remediation, ``waived`` is ``xfail``.
``--collect-only`` loads the checks and runs none; pytest's ``-x`` is mgn's ``--fail-fast``.

Imported into every pytest run: only pytest and the standard library at import; the engine
(``_verify_run``) is imported once ``--mgn-verify`` is given.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._warning import MgnCheckWarning

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
    from ._verify_run import VerifyOptions, VerifyState, override_problem

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
    state = session.config.stash.get(_STATE, None)
    if state is not None:  # the run covers exactly the items left after deselection
        state.remaining = [item.row.id for item in session.items if isinstance(item, MgnCheckItem)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A skipped check's location is its node id (``-rs``: ``SKIPPED [1] mgn-verify::id: reason``),
    not the line of our code that called ``pytest.skip``."""
    report = yield
    if isinstance(item, MgnCheckItem) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (item.nodeid, None, report.longrepr[2])
    return report


class CheckFailed(Exception):
    """A check ended ``fail`` or ``error`` (or the mgn run could not start): the text is the report."""


class MgnVerifyCollector(pytest.Collector):
    """The selected checks; loading them (plugins, checks dirs, config) happens here."""

    def collect(self) -> Iterator[pytest.Item]:
        state = self.config.stash[_STATE]
        try:
            rows = state.collect()
        finally:
            _emit_warnings(state)
        for row in rows:
            yield MgnCheckItem.from_parent(self, name=row.shown, row=row)

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
        state = self.config.stash[_STATE]
        try:
            outcome = state.outcome(self.row.id)  # the first item runs them all
        finally:
            _emit_warnings(state)
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


def _emit_warnings(state: VerifyState) -> None:
    """mgn's warnings (a waiver matching no check, a broken hook) in pytest's warnings summary."""
    for message in state.take_warnings():
        text = message if message.startswith("mgn: ") else f"mgn: warning: {message}"
        warnings.warn_explicit(text, UserWarning, NAME, 0)  # located at mgn, not at our code


def _junit_allows_properties(config: pytest.Config) -> bool:
    try:
        return str(config.getini("junit_family")) != "xunit2"
    except ValueError:  # -p no:junitxml
        return False

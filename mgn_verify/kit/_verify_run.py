"""The engine side of ``pytest --mgn-verify``: one mgn session loaded at collection, ONE mgn run
(the checks left after pytest's deselection, with their requirements) when the first item runs,
and each result turned into the pytest outcome its item reports.

Imported by ``verify_items`` only when ``--mgn-verify`` is given: it may import the engine.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .._exceptions import MgnVerifyError, UsageError
from .._loaded import LoadedSession, Selection
from .._match import IdMatcher
from .._model import LAYERS, Result, Status
from .._report import RunOptions
from .._session import Session
from .._waivers import waiver_label
from ..cli._options import override_problem, parse_overrides, split_list

__all__ = ["CheckRow", "Outcome", "OutcomeKind", "VerifyOptions", "VerifyState", "override_problem",
           "selection_words"]

_GLOB_CHARS = frozenset("*?[")
OutcomeKind = Literal["passed", "warned", "skipped", "xfailed", "failed"]
_FAILING = frozenset({Status.FAIL, Status.ERROR})


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    selection: str
    config_path: str | None = None
    checks_dirs: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    #: pytest's ``-x``: mgn's ``--fail-fast`` (stop scheduling after the first fail or error).
    fail_fast: bool = False


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One selected check, as its pytest item needs it."""

    id: str
    #: The id as every report shows it (a parametrized id built from a secret is redacted).
    shown: str
    layer: str
    severity: str
    #: ``path:line`` of the check function.
    source: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an item reports."""

    kind: OutcomeKind
    text: str = ""
    #: What the check printed (redacted, bounded), shown with a failure.
    output: str = ""


def selection_words(text: str) -> list[str]:
    """``all``, layers, check ids and globs, comma-separated (a comma inside brackets belongs to
    a parametrized id), as ``mgn verify`` splits its lists."""
    words = split_list((text,))
    if not words:
        raise UsageError("--mgn-verify needs a SELECTION: all, layers, or check ids/globs, comma-separated")
    return words


def _looks_like_layer(word: str) -> bool:
    return "." not in word and not _GLOB_CHARS & set(word)


class VerifyState:
    """The session of one pytest run: loaded by ``collect``, run once by the first ``outcome``."""

    def __init__(self, options: VerifyOptions) -> None:
        self.options = options
        #: mgn's warnings not yet handed to pytest (``take_warnings``).
        self._warnings: list[str] = []
        #: The run's errors (``mgn verify`` exits 2 on them): they fail the pytest session.
        self.errors: list[str] = []
        #: Checks run only as requirements of the items (their own item deselected, or none) that
        #: ended fail/error: ``mgn verify`` exits 1 on them, so they fail the pytest session too.
        self.required_failures: list[str] = []
        self._loaded: LoadedSession | None = None
        self._words: list[str] = []
        #: The ids of the items left after pytest's deselection (set at the end of collection).
        self.remaining: list[str] = []
        self._outcomes: dict[str, Outcome] | None = None

    def take_warnings(self) -> list[str]:
        taken, self._warnings[:] = list(self._warnings), []
        return taken

    # -- collection ---------------------------------------------------------------------------

    def collect(self) -> list[CheckRow]:
        """Load plugins, checks dirs and config; the selected checks (with the checks they
        require) in report order. Raises ``MgnVerifyError`` (one line) when that fails."""
        options = self.options
        self._words = words = selection_words(options.selection)
        hint = words if all(_looks_like_layer(w) for w in words) and "all" not in words else ["all"]
        session = Session(os.environ, self._warnings.append)
        loaded = session.load(plugins=[], checks_dirs=list(options.checks_dirs), config_path=options.config_path,
                              settings=_overrides(options.overrides), selection=hint)
        ids = _select(loaded, words)
        self._loaded = loaded
        specs, shown = loaded.graph.specs, loaded.config.redactor.text
        return [CheckRow(cid, shown(cid), specs[cid].layer, str(specs[cid].severity), specs[cid].source)
                for cid in ids]

    # -- the run ------------------------------------------------------------------------------

    def outcome(self, check_id: str) -> Outcome:
        """The outcome of one check; the first call runs every remaining check in one mgn run.
        Ctrl-C during the run: ``KeyboardInterrupt`` (the run has cancelled its checks). A crash
        of the run (a bug) fails every item with one line naming it, never runs them again; the
        item that ran it also shows the traceback (redacted: the exception may hold a secret)."""
        if self._outcomes is None:
            try:
                self._outcomes = self._run()
            except Exception as exc:
                line = f"mgn: error: the mgn run crashed: {self._shown(_describe(exc))}"
                self._outcomes = dict.fromkeys(self.remaining, Outcome("failed", line))
                trace = "".join(traceback.format_exception(exc)).rstrip()
                return Outcome("failed", f"{line}\n\n{self._shown(trace)}")
        return self._outcomes.get(check_id) or Outcome("failed", f"mgn: error: {self._shown(check_id)} was not run")

    def _shown(self, text: str) -> str:
        return self._loaded.config.redactor.text(text) if self._loaded is not None else text

    def _run(self) -> dict[str, Outcome]:
        loaded = self._loaded
        assert loaded is not None, "collect() comes first"
        try:
            ids, preset = loaded.select(Selection(checks=list(self.remaining)))
            config = loaded.config
            options = RunOptions.from_config(config, fail_fast=self.options.fail_fast)
            report = loaded.run(ids, preset, options, ignore=[], argv=sys.argv, selection=self._words)
        except MgnVerifyError as exc:  # e.g. a waiver in the config that does not parse
            failed = Outcome("failed", f"mgn: error: {loaded.config.redactor.text(str(exc))}")
            return dict.fromkeys(self.remaining, failed)
        if report.interrupted:
            raise KeyboardInterrupt("mgn run interrupted (its checks were cancelled)")
        # The report is redacted, ids included: its results are matched to the run's ids by position.
        by_shown_id = {result.id: result for result in report.results}
        outcomes = {cid: outcome_of(result, by_shown_id) for cid, result in zip(ids, report.results, strict=True)}
        self.errors.extend(f"mgn: error: {error}" for error in report.errors)
        items = set(self.remaining)
        self.required_failures.extend(_failure_line(result) for cid, result in zip(ids, report.results, strict=True)
                                      if cid not in items and result.status in _FAILING)
        return outcomes


def _failure_line(result: Result) -> str:
    """``api.config.present (fail): no API endpoint configured`` (the report is redacted)."""
    return f"{result.id} ({result.status}): {result.message}" if result.message else f"{result.id} ({result.status})"


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outcome_of(result: Result, results: dict[str, Result]) -> Outcome:
    """How pytest reports one mgn result (``results``: every result of the run, by id)."""
    status, message, output = result.status, result.message, result.output
    if status is Status.PASS:
        return Outcome("passed", message, output)
    if status is Status.WARN:
        return Outcome("warned", message or "warning", output)
    if status is Status.SKIP:
        return Outcome("skipped", message or "skipped", output)
    if status is Status.BLOCKED:
        roots = [_root_cause(root, results) for root in result.blocked_by]
        return Outcome("skipped", "blocked by " + "; ".join(roots) if roots else message, output)
    if status is Status.WAIVED:
        waiver = result.waiver
        reason = (waiver.reason or waiver_label(waiver)) if waiver is not None else message
        return Outcome("xfailed", f"waived: {reason}", output)
    lines = [f"{status}: {message}" if message else str(status)]
    if result.remediation:
        lines.append(f"remediation: {result.remediation}")
    return Outcome("failed", "\n".join(lines), output)


def _root_cause(root: str, results: dict[str, Result]) -> str:
    cause = results.get(root)
    if cause is None:
        return root
    return f"{root}: {cause.message}" if cause.message else f"{root} ({cause.status})"


def _overrides(pairs: Sequence[str]) -> dict[str, tuple[object, bool]]:
    return parse_overrides(tuple(pairs))


def _select(loaded: LoadedSession, words: list[str]) -> list[str]:
    """The union of the layers and of the check ids/globs named, in report order: a word is a
    layer when a check has it as its layer (or it is a built-in one or ``all``), else an id or
    glob; a dotless word that matches no check is read as a misspelt layer."""
    specs = loaded.graph.specs
    present = {spec.layer for spec in specs.values()} | set(LAYERS) | {"all"}
    matcher = IdMatcher(specs.values())
    layers: list[str] = []
    patterns: list[str] = []
    for word in words:
        if word in present or (_looks_like_layer(word) and not matcher.select(word)):
            layers.append(word)
        elif matcher.select(word):
            patterns.append(word)
        else:
            raise UsageError(f"--mgn-verify: {word!r} matches no check{matcher.suggest(word)}")
    chosen: set[str] = set()
    if layers:
        chosen.update(loaded.select(Selection(layers=layers))[0])
    if patterns:
        chosen.update(loaded.select(Selection(checks=patterns))[0])
    return [cid for cid in loaded.graph.order if cid in chosen]

"""A loaded session: every part is there (plugins, config, graph, reporters). It selects the
checks a command asks for and runs them to a complete report — always, and on time (the run
itself is driven by ``_supervisor``)."""

from __future__ import annotations

import contextlib
import inspect
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._capture import capture_output
from ._exceptions import UsageError
from ._exitcodes import ExitCode, exit_code_for
from ._graph import Graph
from ._match import IdMatcher
from ._model import LAYERS, CheckSpec, Result
from ._plugins import Plugins
from ._report import RunOptions, RunPlan, RunReport
from ._reporting import ReporterRegistry
from ._text import describe_exception, did_you_mean
from ._version import __version__
from ._waivers import IGNORE_KEY, WaiverBook, parse_waivers, setting_where
from .config import Config, Redactor

if TYPE_CHECKING:
    from ._gates import GateBook
    from ._scheduler import RunningBoard
    from ._watchdog import Watchdog

__all__ = ["LoadedSession", "Selection"]


@dataclass
class Selection:
    layers: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    #: ``--gate NAME``: the gate's members (instead of layers), with their dependencies.
    gate: str | None = None


@dataclass
class LoadedSession:
    plugins: Plugins
    config: Config
    graph: Graph
    reporters: ReporterRegistry
    warnings: list[str]
    warn: Callable[[str], None]
    _gates: GateBook | None = field(default=None, init=False, repr=False)

    def gate_book(self) -> GateBook:
        """The gates and their members among the loaded checks (built once; config warnings once)."""
        if self._gates is None:
            from ._gates import GateBook

            self._gates = GateBook([self.graph.specs[cid] for cid in self.graph.order], self.config, self.warn)
        return self._gates

    # -- selecting ----------------------------------------------------------------------------

    def select(self, selection: Selection) -> tuple[list[str], dict[str, str]]:
        """The ids to run in report order, and those to report as skipped without running."""
        specs = self.graph.specs
        matcher = IdMatcher(specs.values())
        layers = self._selected_layers(selection.layers)
        chosen = {cid for cid in specs if not layers or specs[cid].layer in layers}
        if selection.gate is not None:
            chosen = self._gate_members(selection.gate, layers)
        filters: tuple[tuple[str, list[str], Callable[[CheckSpec, str], bool]], ...] = (
            ("--check", selection.checks, lambda spec, p: matcher.matches(p, spec)),
            ("--tag", selection.tags, _has_tag))
        for option, patterns, hit in filters:
            for pattern in patterns:
                if not any(hit(spec, pattern) for spec in specs.values()):
                    raise UsageError(f"{option} {pattern!r} matches no check")
            if patterns:
                chosen = {cid for cid in chosen if any(hit(specs[cid], p) for p in patterns)}
        for pattern in selection.skips:  # a typo must not silently run what was meant to be skipped
            if not matcher.select(pattern):
                self.warn(f"--skip {pattern!r} matches no check{matcher.suggest(pattern)}")
        skipped = {cid for cid in specs if any(matcher.matches(p, specs[cid]) for p in selection.skips)}
        chosen -= skipped
        if not chosen:
            what = ", ".join(layers) or "the selection"
            loaded = ", ".join(p.name for p in self.plugins.loaded)
            raise UsageError(f"no checks selected for {what} (plugins loaded: {loaded})")
        closure = self.graph.closure(chosen)
        preset = {cid: "skipped by --skip" for cid in closure & skipped}
        return [cid for cid in self.graph.order if cid in closure], preset

    def _gate_members(self, name: str, layers: list[str]) -> set[str]:
        if layers:
            raise UsageError(f"--gate {name} selects its own checks: leave out the layer names "
                             f"({', '.join(layers)})")
        gate = self.gate_book().gate(name)
        if not gate.members:
            raise UsageError(f"gate {name!r} has no checks here (its members: none loaded or all removed; "
                             f"see mgn gate show {name})")
        return set(gate.ids)

    def _selected_layers(self, names: list[str]) -> list[str]:
        """The layers named on the command line (none: all), each known and with checks."""
        if "all" in names and len(names) > 1:
            raise UsageError(f"'all' cannot be combined with layer names (got: {' '.join(names)})")
        layers = [name for name in names if name != "all"]
        present = {spec.layer for spec in self.graph.specs.values()}
        known = sorted(present | set(LAYERS))
        for name in layers:
            if name not in known:
                raise UsageError(f"unknown layer {name!r}{did_you_mean(name, known)}; "
                                 f"known layers: {', '.join(known)}")
            if name not in present:
                raise UsageError(f"layer {name!r} has no checks ({self._why_no_checks(name)})")
        return layers

    def _why_no_checks(self, layer: str) -> str:
        loaded = {p.name for p in self.plugins.loaded}
        if layer in loaded:  # the built-in layers' plugins are named after them
            return f"plugin {layer!r} registered none with this configuration"
        return "its plugin is blocked or not installed"

    def _waiver_book(self, ignore: list[str], reason: str = "") -> WaiverBook:
        """Config waivers and ignore lists; an entry that matches no check is a warning."""
        config = self.config
        configured = [*config["verify.ignore_preflight_errors"]]
        waivers = config["verify.waivers"]
        parsed = parse_waivers(waivers, ignore, date.today(), source=config.file, ignore_reason=reason,
                               configured=configured, configured_where=setting_where(config, IGNORE_KEY))
        book = WaiverBook(parsed, self.graph.specs.values())
        named = [("--ignore-preflight-errors", ignore), (IGNORE_KEY, configured),
                 ("verify.waivers", [w["id"] for w in waivers])]
        for where, patterns in named:
            for pattern, hint in book.unmatched(patterns):
                self.warn(f"{where} {pattern!r} matches no check{hint}")
        return book

    # -- running ------------------------------------------------------------------------------

    def run(self, ids: list[str], preset: dict[str, str], options: RunOptions, *,
            ignore: list[str], argv: list[str], live: Sequence[object] = (),
            selection: Sequence[str] = (), reason: str = "") -> RunReport:
        """Run the checks to a complete report, always, and on time (see ``_supervisor``).
        ``reason``: why the ``ignore`` patterns are acceptable (a gated command's ``--reason``)."""
        config = self.config
        waivers = self._waiver_book(ignore, reason)
        pm = self.plugins.pm
        for index, reporter in enumerate(live):  # named: traces and the hook recorder show who
            pm.register(reporter, name=f"live:{type(reporter).__name__}:{index}")
        plan = RunPlan([self.graph.specs[cid] for cid in ids], options, list(selection))
        started_at = datetime.now(UTC)
        started = perf_counter()
        errors: list[str] = []
        deadline_s = options.run_deadline or self._derived_deadline(plan, preset)
        watchdog = _watchdog(deadline_s, config.redactor)
        try:
            with capture_output():  # a check's print() goes to its result's output, never to stdout
                results, interrupted = self._run(plan, ids, preset, waivers, errors, deadline_s, watchdog)
            if watchdog is not None:  # the checks are over: the report and the hooks get a fresh grace
                watchdog.extend()
            ordered = [results[cid] for cid in ids]

            def exit_code() -> ExitCode:
                return exit_code_for(ordered, strict=options.strict, interrupted=interrupted,
                                     framework_errors=bool(errors))

            report = RunReport(
                results=ordered, started_at=started_at, duration_s=perf_counter() - started,
                hostname=socket.gethostname(), argv=config.redactor.data(list(argv)), tool_version=__version__,
                exit_code=exit_code(), interrupted=interrupted, plugins=[p.to_dict() for p in self.plugins.loaded],
                config_file=config.file, errors=errors, warnings=list(self.warnings),
                selection=list(selection),
            )
            report.redact(config.redactor)  # mgn_run_finish hooks (third-party code) see no secret
            self._bounded_hook("mgn_run_finish", errors, options.default_timeout, report=report)
            report.exit_code = exit_code()  # the hook itself may have failed
        finally:
            if watchdog is not None:
                watchdog.close()
            for reporter in live:
                pm.unregister(reporter)
        return report

    def _run(self, plan: RunPlan, ids: list[str], preset: dict[str, str], waivers: WaiverBook,
             errors: list[str], deadline_s: float, board: RunningBoard | None) -> tuple[dict[str, Result], bool]:
        # The engine is imported here: list, explain and graph never pay for it.
        from ._fixtures import FixtureManager
        from ._pool import WorkerPool
        from ._runner import CheckRunner
        from ._scheduler import Scheduler
        from ._stop import Stop
        from ._supervisor import Supervisor

        options = plan.options
        stop = Stop()
        pool = WorkerPool(options.concurrency)
        supervisor = Supervisor(stop=stop, pool=pool, errors=errors, redactor=self.config.redactor,
                                run_deadline=deadline_s, teardown_timeout=options.default_timeout, warn=self.warn)
        fixtures = FixtureManager(self.plugins.registry.fixtures, {"config": self.config, "plan": plan},
                                  supervisor.loop_thread.loop)
        wait_until = perf_counter() + options.wait if options.wait else None
        runner = CheckRunner(pool=pool, fixtures=fixtures, waivers=waivers, redactor=self.config.redactor,
                             options=options, deadline=wait_until)
        hook = self.plugins.pm.hook
        # Per-check hooks sit on the hot path: skip the call entirely when nobody listens.
        on_start = ((lambda spec: self._safe_hook("mgn_check_start", errors, spec=spec))
                    if hook.mgn_check_start.get_hookimpls() else _ignore)
        on_result = ((lambda result: self._safe_hook("mgn_result", errors, result=result))
                     if hook.mgn_result.get_hookimpls() else _ignore)
        scheduler = Scheduler(
            self.graph, ids, runner, concurrency=options.concurrency, fail_fast=options.fail_fast,
            preset=preset, redactor=self.config.redactor, on_start=on_start, on_result=on_result,
            waivers=waivers, stop=stop, default_timeout=options.default_timeout, board=board,
        )
        signalled = threading.Event()

        def on_signal() -> None:
            signalled.set()
            supervisor.on_signal()

        restore = _install_signal_handlers(on_signal)
        try:
            supervisor.run(scheduler, fixtures, lambda: self._safe_hook("mgn_run_start", errors, plan=plan))
        finally:
            restore()
            pool.shutdown()
        if signalled.is_set() and not stop.requested:  # came after the last check ended: not lost,
            signal.raise_signal(signal.SIGINT)  # handed to the command's handler (--watch must stop)
        return scheduler.results, stop.interrupted

    def _derived_deadline(self, plan: RunPlan, preset: Mapping[str, str]) -> float:
        from ._deadline import derived_run_deadline

        fixtures = self.plugins.registry.fixtures.values()
        teardowns = sum(inspect.isgeneratorfunction(f.func) or inspect.isasyncgenfunction(f.func) for f in fixtures)
        return derived_run_deadline([s for s in plan.specs if s.id not in preset], self.graph.requires,
                                    plan.options, teardowns)

    def _bounded_hook(self, name: str, errors: list[str], timeout: float, **kwargs: Any) -> None:
        """A hook after the checks (``mgn_run_finish``), on a daemon thread: waited for at most
        ``timeout`` and not at all after Ctrl-C/SIGTERM, which are handed on to the command's own
        handlers once the wait ends. A hook that hangs costs its own work, never the report."""
        done = threading.Event()

        def call() -> None:
            self._safe_hook(name, errors, **kwargs)
            done.set()

        signalled = threading.Event()
        restore = _install_signal_handlers(signalled.set)
        try:
            threading.Thread(target=call, name=f"mgn-hook-{name}", daemon=True).start()
            deadline = perf_counter() + timeout
            while not done.wait(0.05) and not signalled.is_set():
                if perf_counter() >= deadline:
                    errors.append(f"hook {name} did not return within {timeout:g} s (abandoned)")
                    break
        finally:
            restore()
        if signalled.is_set():
            signal.raise_signal(signal.SIGINT)  # to the command's handler: an interruption

    def _safe_hook(self, name: str, errors: list[str], **kwargs: Any) -> None:
        """Run-phase hooks: a broken plugin never takes the run down; its exception is one
        redacted line in ``summary.errors``, which makes the run exit 2 (never 0)."""
        try:
            getattr(self.plugins.pm.hook, name)(**kwargs)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            message = self.config.redactor.text(f"hook {name} raised {describe_exception(exc)}")
            if message not in errors:
                errors.append(message)



def _ignore(_: object) -> None:
    pass


def _has_tag(spec: CheckSpec, tag: str) -> bool:
    return tag in spec.tags


def _install_signal_handlers(handler: Callable[[], None]) -> Callable[[], None]:
    """Ctrl-C and SIGTERM stop the run cleanly (reports still written), however often they
    come: ``handler`` runs in the signal handler, so it only sets a flag. Main thread only.

    :returns: what puts the previous handlers back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, lambda _sig, _frame: handler())

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    return restore


def _watchdog(deadline_s: float, redactor: Redactor) -> Watchdog | None:
    """The run deadline's last resort (see ``_watchdog``); only for a run on the main thread,
    as a CLI run is: it kills the whole process."""
    if threading.current_thread() is not threading.main_thread():
        return None
    from ._watchdog import Watchdog

    return Watchdog(deadline_s, redactor.text).start()

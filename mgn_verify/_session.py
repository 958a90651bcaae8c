"""A session: load plugins and config, build the graph, select, run, and report.

The CLI, the lifecycle commands and tests all go through ``Session``; it never prints. The
loading steps raise ``MgnVerifyError`` subclasses with one-line messages naming the culprit.
"""

from __future__ import annotations

import difflib
import fnmatch
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._exceptions import MgnVerifyError, PluginError, UsageError
from ._exitcodes import exit_code_for
from ._graph import Graph, build_graph
from ._model import LAYERS, CheckSpec, Result
from ._plugins import Plugins, load_plugins
from ._report import RunOptions, RunPlan, RunReport
from ._version import __version__
from ._waivers import WaiverBook, parse_waivers
from .config import Config, ConfigSources, Setting, SettingsRegistry, load_sources, resolve
from .config.loader import early_value
from .reporters import ReporterRegistry

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

__all__ = ["Selection", "Session"]

#: Fixtures every check can ask for: the resolved ``config`` and the run's ``plan``.
BUILTIN_FIXTURES = {"config", "plan"}


@dataclass
class Selection:
    layers: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


class Session:
    def __init__(self, env: Mapping[str, str], warn: Callable[[str], None]) -> None:
        self.env = env
        self.warnings: list[str] = []
        self._warn = warn
        self.plugins: Plugins | None = None
        self.config: Config | None = None
        self.graph: Graph | None = None
        self.reporters = ReporterRegistry()

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._warn(message)

    # -- loading ------------------------------------------------------------------------------

    def load(self, *, plugins: list[str], checks_dirs: list[str], config_path: str | None,
             settings: dict[str, tuple[Any, bool]], selection: Sequence[str] = ()) -> None:
        sources = load_sources(config_path, self.env, settings)
        self.plugins = loaded = load_plugins(plugins, [*_configured_checks_dirs(sources), *checks_dirs], self.env)
        registry = SettingsRegistry()
        self._call_each("mgn_add_settings", settings=registry)
        self.config = config = resolve(sources, registry, warn=self.warn)
        self._call_each("mgn_configure", config=config)
        self._call_each("mgn_register_fixtures", registry=loaded.registry)
        self._call_each("mgn_register_checks", registry=loaded.registry, config=config,
                        selection=list(selection))
        self._call_each("mgn_register_reporters", reporters=self.reporters)
        loaded.registry.validate_fixtures(BUILTIN_FIXTURES)
        self.graph = build_graph(loaded.registry.checks)

    def _call_each(self, hook: str, **kwargs: Any) -> None:
        """Call a setup hook implementation by implementation, so an exception names its plugin."""
        assert self.plugins is not None
        for impl in reversed(getattr(self.plugins.pm.hook, hook).get_hookimpls()):
            for value in kwargs.values():  # registries record which plugin added what
                if hasattr(value, "current_plugin"):
                    value.current_plugin = impl.plugin_name
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames})
            except MgnVerifyError:
                raise
            except Exception as exc:
                text = str(exc).strip().splitlines()
                raise PluginError(f"{hook} raised {type(exc).__name__}" + (f": {text[0]}" if text else ""),
                                  plugin=impl.plugin_name) from None

    # -- selecting ----------------------------------------------------------------------------

    def select(self, selection: Selection) -> tuple[list[str], dict[str, str]]:
        """The ids to run in report order, and those to report as skipped without running."""
        assert self.graph is not None
        specs = self.graph.specs
        chosen = set(specs)
        layers = [name for name in selection.layers if name != "all"]
        if layers:
            known = sorted({s.layer for s in specs.values()} | set(LAYERS))
            for name in layers:
                if name not in known:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise UsageError(f"unknown layer {name!r}{hint}; known layers: {', '.join(known)}")
            chosen = {cid for cid in chosen if specs[cid].layer in layers}
        filters: tuple[tuple[str, list[str], Callable[[CheckSpec, str], bool]], ...] = (
            ("--check", selection.checks, _matches), ("--tag", selection.tags, _has_tag))
        for option, patterns, hit in filters:
            for pattern in patterns:
                if not any(hit(spec, pattern) for spec in specs.values()):
                    raise UsageError(f"{option} {pattern!r} matches no check")
            if patterns:
                chosen = {cid for cid in chosen if any(hit(specs[cid], p) for p in patterns)}
        skipped = {cid for cid in specs if any(_matches(specs[cid], p) for p in selection.skips)}
        chosen -= skipped
        if not chosen:
            what = ", ".join(layers) or "the selection"
            loaded = ", ".join(p.name for p in self.plugins.loaded) if self.plugins else ""
            raise UsageError(f"no checks selected for {what} (plugins loaded: {loaded})")
        closure = self.graph.closure(chosen)
        preset = {cid: "skipped by --skip" for cid in closure & skipped}
        return [cid for cid in self.graph.order if cid in closure], preset

    # -- running ------------------------------------------------------------------------------

    def run(self, ids: list[str], preset: dict[str, str], options: RunOptions, *,
            ignore: list[str], argv: list[str], live: Sequence[object] = (),
            selection: Sequence[str] = ()) -> RunReport:
        import asyncio  # lazy: list, explain and graph never run anything

        assert self.graph is not None and self.plugins is not None and self.config is not None
        config = self.config
        waivers = WaiverBook(parse_waivers(config["verify.waivers"],
                                           [*config["verify.ignore_preflight_errors"], *ignore],
                                           date.today()))
        pm = self.plugins.pm
        for reporter in live:
            pm.register(reporter)
        plan = RunPlan([self.graph.specs[cid] for cid in ids], options, list(selection))
        started_at = datetime.now(UTC)
        started = perf_counter()
        errors: list[str] = []
        try:
            results, interrupted = asyncio.run(self._run(plan, ids, preset, waivers, errors))
            ordered = [results[cid] for cid in ids]
            report = RunReport(
                results=ordered, started_at=started_at, duration_s=perf_counter() - started,
                hostname=socket.gethostname(), argv=config.redactor.data(list(argv)), tool_version=__version__,
                exit_code=exit_code_for(ordered, strict=options.strict, interrupted=interrupted),
                interrupted=interrupted, plugins=[p.to_dict() for p in self.plugins.loaded],
                config_file=config.file, errors=errors, warnings=list(self.warnings),
                selection=list(selection),
            )
            self._safe_hook("mgn_run_finish", errors, report=report)
        finally:
            for reporter in live:
                pm.unregister(reporter)
        return report

    async def _run(self, plan: RunPlan, ids: list[str], preset: dict[str, str], waivers: WaiverBook,
                   errors: list[str]) -> tuple[dict[str, Result], bool]:
        assert self.graph is not None and self.config is not None and self.plugins is not None
        import asyncio

        # The engine is imported here: list, explain and graph never pay for it.
        from ._fixtures import FixtureManager
        from ._pool import WorkerPool
        from ._runner import CheckRunner
        from ._scheduler import Scheduler

        options = plan.options
        loop = asyncio.get_running_loop()
        pool = WorkerPool(options.concurrency)
        fixtures = FixtureManager(self.plugins.registry.fixtures, {"config": self.config, "plan": plan}, loop)
        deadline = perf_counter() + options.wait if options.wait else None
        runner = CheckRunner(pool=pool, fixtures=fixtures, waivers=waivers, redactor=self.config.redactor,
                             options=options, deadline=deadline)
        hook = self.plugins.pm.hook
        # Per-check hooks sit on the hot path: skip the call entirely when nobody listens.
        on_start = ((lambda spec: self._safe_hook("mgn_check_start", errors, spec=spec))
                    if hook.mgn_check_start.get_hookimpls() else _ignore)
        on_result = ((lambda result: self._safe_hook("mgn_result", errors, result=result))
                     if hook.mgn_result.get_hookimpls() else _ignore)
        scheduler = Scheduler(
            self.graph, ids, runner, concurrency=options.concurrency, fail_fast=options.fail_fast,
            preset=preset, redactor=self.config.redactor, on_start=on_start, on_result=on_result,
        )
        handled = _install_signal_handlers(loop, scheduler.interrupt)
        try:
            self._safe_hook("mgn_run_start", errors, plan=plan)
            results = await scheduler.run()
            errors.extend(await fixtures.teardown(pool.run, options.default_timeout))
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            pool.shutdown()
        return results, scheduler.interrupted

    def _safe_hook(self, name: str, errors: list[str], **kwargs: Any) -> None:
        """Run-phase hooks: a broken reporter plugin is reported, never takes the run down."""
        assert self.plugins is not None
        try:
            getattr(self.plugins.pm.hook, name)(**kwargs)
        except Exception as exc:
            message = f"hook {name} raised {type(exc).__name__}: {exc}"
            if message not in errors:
                errors.append(message)


def _configured_checks_dirs(sources: ConfigSources) -> list[str]:
    """``verify.checks_dirs``, needed before plugins (and so settings) exist."""
    value = early_value(Setting("verify.checks_dirs", [], "list"), sources)
    return [str(item) for item in value] if isinstance(value, list) else []


def _ignore(_: object) -> None:
    pass


def _has_tag(spec: CheckSpec, tag: str) -> bool:
    return tag in spec.tags


def _matches(spec: CheckSpec, pattern: str) -> bool:
    # An exact id wins over a glob reading of its brackets (``--check kubernetes.nodes.ready[prod]``).
    return (spec.id == pattern or fnmatch.fnmatchcase(spec.id, pattern)
            or fnmatch.fnmatchcase(spec.base_id, pattern))


def _install_signal_handlers(loop: AbstractEventLoop, handler: Callable[[], None]) -> list[int]:
    """Ctrl-C and SIGTERM stop the run cleanly (reports still written); main thread only."""
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    return installed



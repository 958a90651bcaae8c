"""Every hook a plugin can implement, grouped by the phase of a run in which it fires.

Each hook is documented with the same template: what it is for; **When** it runs (and what
runs just before and after); **Params**; **Return**. Implementations may accept any subset
of the parameters (pluggy passes them by name), so a parameter can be added later without
breaking plugins. All hooks are prefixed ``mgn_``; an unknown ``mgn_`` function in a plugin is
an error at load time.

The run protocol, in order::

    mgn_add_settings      once per plugin set, before the config is read
    mgn_configure         config resolved
    mgn_register_fixtures / mgn_register_checks / mgn_register_reporters
    (graph built and checked: cycles, unknown dependencies, duplicate ids)
    mgn_run_start         plan ready, nothing run yet
      mgn_check_start     a check is about to run (per check)
      mgn_result          a check has a final result (per check, in completion order)
    mgn_run_finish        every result known, reports not yet written
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._model import CheckSpec, Result
    from ._registry import Registry
    from ._report import RunPlan, RunReport
    from ._reporting import ReporterRegistry
    from .config import Config, SettingsRegistry

__all__ = ["hookimpl", "hookspec"]

PROJECT = "mgn_verify"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- initialization -------------------------------------------------------------------------

@hookspec
def mgn_add_settings(settings: SettingsRegistry) -> None:
    """Declare the configuration keys this plugin reads, with defaults and help.

    **When**: once, after all plugins are loaded and before any config source is read, so that
    unknown keys can be reported and values type-checked.

    :param settings: call ``settings.add("section.name", default, help=..., secret=...)``.
    **Return**: nothing.
    """


@hookspec
def mgn_configure(config: Config) -> None:
    """Prepare the plugin for a run with the resolved configuration.

    **When**: after ``mgn_add_settings`` and config resolution, before registration hooks.

    :param config: the resolved configuration (read-only).
    **Return**: nothing.
    """


# -- registration ---------------------------------------------------------------------------

@hookspec
def mgn_register_fixtures(registry: Registry) -> None:
    """Add fixtures that are not module-level ``@fixture`` functions of a plugin.

    **When**: after ``mgn_configure``; module-level fixtures of each plugin are already in.

    :param registry: call ``registry.add_fixture(func, name=None)``.
    **Return**: nothing.
    """


@hookspec
def mgn_register_checks(registry: Registry, config: Config, selection: Sequence[str]) -> None:
    """Add checks programmatically, e.g. one per endpoint listed in the config.

    Module-level ``@check`` functions of a plugin are collected automatically; this hook is for
    checks that only exist once the configuration is known.

    **When**: after ``mgn_register_fixtures``; the dependency graph is built right after.

    :param registry: call ``registry.add_check(func)`` with a ``@check``-marked function.
    :param config: the resolved configuration.
    :param selection: the layers named on the command line (``["all"]`` or empty: every
        layer), so a plugin can skip costly discovery for layers nobody asked for.
    **Return**: nothing.
    """


@hookspec
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    """Make an output format available to ``-o NAME`` (the report on stdout).

    **When**: after ``mgn_configure``, before the run.

    :param reporters: call ``reporters.add(name, factory, help=...)``; ``factory(context)`` (a
        ``ReporterContext``: config, stream, tty, colour, verbosity) returns an object with
        ``render(report) -> str``.
    **Return**: nothing.
    """


# -- running --------------------------------------------------------------------------------

@hookspec
def mgn_run_start(plan: RunPlan) -> None:
    """The run is about to start.

    **When**: after the graph is built and the selection made, before the first check starts.

    :param plan: the checks to run, in report order, with the run's options.
    **Return**: nothing.
    """


@hookspec
def mgn_check_start(spec: CheckSpec) -> None:
    """A check is about to run its first attempt (used for live progress).

    **When**: on the scheduler's event loop thread, as the check is handed to a worker.
    Checks that end without running (``blocked``, skipped by propagation) do not fire it.

    :param spec: the check.
    **Return**: nothing. Must be fast: it runs on the scheduler's hot path.
    """


@hookspec
def mgn_result(result: Result) -> None:
    """A check reached its final result (after retries, waivers and redaction).

    **When**: on the scheduler's event loop thread, in completion order, once per check,
    including ``blocked`` and propagated ``skip`` results.

    :param result: the final, redacted result.
    **Return**: nothing. Must be fast: it runs on the scheduler's hot path.
    """


@hookspec
def mgn_run_finish(report: RunReport) -> None:
    """Every result is known; the report is complete and in deterministic order.

    **When**: after the last result (also after Ctrl-C or ``--fail-fast``), before fixtures are
    torn down and before report files are written.

    :param report: the complete run report.
    **Return**: nothing.
    """

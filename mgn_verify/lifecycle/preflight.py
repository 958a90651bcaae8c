"""Run a command's preflight gate for its target cluster(s), decide, and audit overrides.

::

    outcome = run_preflight(Preflight(gate="workspace.create", clusters=("lab",),
                                      command="workspace create", ignore=("all",), reason="OPS-1"), ctx)
    if not outcome.proceed:
        return outcome.exit_code          # 1 (a check failed) or 3 (could not verify), 2, 130

The gate runs exactly as ``mgn verify --gate NAME --cluster ID`` runs it: the gate's members
for those clusters plus their dependencies, through the normal runner (timeouts, retries,
Ctrl-C). The decision: any ``fail`` (or a check blocked by one) refuses with exit 1, else any
``error`` refuses with 3, a framework error with 2, an interruption with 130; failures matched
by ``ignore`` become ``waived`` (never those of a check declared not waivable) and are recorded
in the JSON report's ``gate`` section and, unless it is a dry run, in the audit log. An override
that cannot be recorded does not happen (exit 2).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgn_verify._loaded import LoadedSession
    from mgn_verify._report import RunReport

    from .context import CommandContext

__all__ = ["MAX_REASON", "LocalGap", "Preflight", "PreflightOutcome", "local_gaps", "run_preflight"]

#: Characters a ``--reason`` may have: it is repeated in every waived result and the audit log.
MAX_REASON = 2000


@dataclass(frozen=True)
class Preflight:
    """What a gated command asks for before it acts."""

    #: The gate's name: install, cluster.bootstrap, cluster.apply, cluster.delete,
    #: workspace.create, workspace.delete, federation.deploy (or one a plugin/config defines).
    gate: str
    #: The cluster ids the command targets (its gate's per-cluster checks run for these only).
    clusters: tuple[str, ...]
    #: The command as the user would name it ("workspace create"), for the report and audit log.
    command: str
    #: ``--ignore-preflight-errors`` values: ids, globs, or "all" (``--skip-verify`` is "all").
    ignore: tuple[str, ...] = ()
    #: ``--reason``: why the overrides are acceptable (recorded in the audit log).
    reason: str = ""
    #: ``--dry-run``: run the gate, never act (the outcome still says whether it would proceed).
    dry_run: bool = False
    #: ``--json`` / ``--junit``: the preflight report files.
    json_path: str | None = None
    junit_path: str | None = None
    verbose: int = 0
    #: Settings for the gate run on top of the command line's (e.g. the kubeconfig that
    #: ``cluster bootstrap --kubeconfig`` is about to register), ``{key: (value, from_text)}``.
    settings: Mapping[str, tuple[Any, bool]] = field(default_factory=dict)


@dataclass
class PreflightOutcome:
    """``proceed``: act. Otherwise exit with ``exit_code`` (the report was printed)."""

    proceed: bool
    exit_code: int
    report: RunReport | None = None
    #: The waived results that let it proceed: ``{"id", "status", "message"}`` each.
    overrides: list[dict[str, Any]] = field(default_factory=list)
    #: Where the overrides were recorded (``None``: nothing was waived, or a dry run).
    audit_path: str | None = None


def run_preflight(request: Preflight, ctx: CommandContext) -> PreflightOutcome:
    """Run ``request.gate``'s checks (with their dependencies) for ``request.clusters``.

    Prints the preflight report on stderr (a one-line verdict when it passes; the full report,
    root causes and remediation first, when it refuses or something was waived), writes
    ``json_path``/``junit_path``, turns failures matched by ``ignore`` into ``waived`` (never for
    a check declared not waivable) and, when any result was waived, appends one line to the audit
    log (``audit.path``) and records the overrides in the JSON report. The reason is made one
    line of visible text first (``clean_reason``); one over ``MAX_REASON`` characters refuses (2).
    """
    from mgn_verify._exceptions import MgnVerifyError
    from mgn_verify.cli._signals import SignalScope

    try:
        request = replace(request, reason=clean_reason(request.reason))
    except MgnVerifyError as exc:  # the report must not repeat the reason refused for its size
        return _fail_before_run(replace(request, reason=""), ctx, str(exc), int(exc.exit_code))
    with SignalScope() as signals:  # Ctrl-C at any moment: exit 130, the reports still written
        try:
            outputs = _outputs(request)  # a bad report path is a usage error before anything runs
            with signals.raising():
                loaded = _load(request, ctx)
            return _run_gate(request, ctx, loaded, outputs, signals)
        except MgnVerifyError as exc:
            return _fail_before_run(request, ctx, str(exc), int(exc.exit_code))
        except KeyboardInterrupt:
            return _fail_before_run(request, ctx, "interrupted while loading plugins and configuration", 130)


def clean_reason(reason: object) -> str:
    """``--reason`` as one line of visible text: whitespace runs (newlines, U+2028 ...) become
    one space, control characters and undecodable bytes are shown as escapes; a reason over
    ``MAX_REASON`` characters is a usage error (it is repeated in every waived result)."""
    from mgn_verify._exceptions import UsageError
    from mgn_verify._text import escape_controls

    text = "" if reason is None else str(reason)
    if len(text) > MAX_REASON:
        raise UsageError(f"--reason is {len(text)} characters long: at most {MAX_REASON} "
                         "(name a ticket or a link instead)")
    text = " ".join(text.split())
    return escape_controls(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _load(request: Preflight, ctx: CommandContext) -> LoadedSession:
    from mgn_verify._gates import gate_layers

    extra = dict(request.settings)
    if request.clusters:
        extra["verify.clusters"] = (list(request.clusters), False)
        extra["verify.gate_targets"] = (list(request.clusters), False)  # unknown ones: via the Host App
    loaded = ctx.load(gate_layers(request.gate), extra)
    loaded.gate_book().check_name(request.gate)  # an unknown gate: one line, exit 2
    return loaded


#: What ``apply_waiver`` makes of a waived failure's message: "would be fail: MSG; waived: WHY".
_WAIVED = re.compile(r"^would be (fail|error): (.*?)(?:; waived: .*)?$", re.DOTALL)


def override_of(result: Any) -> dict[str, Any]:
    """A waived result as the report and the audit log record it."""
    match = _WAIVED.match(result.message)
    status, message = (match.group(1), match.group(2)) if match else ("fail", result.message)
    from mgn_verify._waivers import waiver_label

    entry = {"id": result.id, "status": status, "message": message}
    if result.waiver is not None:
        entry["waiver"] = waiver_label(result.waiver)
    return entry


def _outputs(request: Preflight) -> list[Any]:
    """The report files asked for (``--json``/``--junit``); a bad path is a usage error now."""
    from mgn_verify.cli._emit import resolve_outputs

    return resolve_outputs([], [("--json", "json", request.json_path), ("--junit", "junit", request.junit_path)])


def _run_gate(request: Preflight, ctx: CommandContext, loaded: LoadedSession, outputs: list[Any],
              signals: Any) -> PreflightOutcome:
    from mgn_verify._gates import gate_run_selection
    from mgn_verify._loaded import Selection
    from mgn_verify._model import Status
    from mgn_verify._report import RunOptions
    from mgn_verify.config.redact import scrub_argv

    ids, preset = loaded.select(Selection(gate=request.gate))
    _warn_ignored_outside(loaded, request, ids)
    notes = [gap.message for gap in local_gaps(loaded, request.gate, request.clusters)]
    for note in notes:  # before the run: the report's warnings carry them too
        loaded.warn(note)
    removed = [{"id": m.id, "by": m.via} for m in loaded.gate_book().gate(request.gate).removed]
    config = loaded.config
    options = replace(RunOptions.from_config(config), strict=False)  # verify.strict is for mgn verify
    report = loaded.run(ids, preset, options, ignore=list(request.ignore), argv=scrub_argv(ctx.argv),
                        live=[signals.redeliverer()], selection=gate_run_selection(request.gate),
                        reason=request.reason)
    if signals.pending() and not report.interrupted:
        report.mark_interrupted("interrupted after every check had finished (the results are complete)")
    overrides = [override_of(r) for r in report.results if r.status is Status.WAIVED]
    code = _decide(report)
    audit_path = None
    if code == 0 and overrides:
        _warn_without_reason(loaded, report, request, overrides)
        if not request.dry_run:
            audit_path, code = _audit(request, ctx, loaded, report, overrides, "proceed")
    _set_gate(report, request, code, overrides, audit_path, removed=removed, notes=notes)
    full = code != 0 or bool(overrides) or request.verbose > 0
    _print_and_write(request, loaded, report, outputs, signals, full=full)
    if code == 0 and int(report.exit_code) != 0:  # a report could not be written, or Ctrl-C while writing
        code = int(report.exit_code)
        if audit_path is not None:  # the audit log must not claim an override that did not happen
            _audit(request, ctx, loaded, report, overrides, "refuse")
    _verdict(request, report, code, overrides, audit_path, _refusal_hint(loaded, report))
    return PreflightOutcome(proceed=code == 0, exit_code=code, report=report, overrides=overrides,
                            audit_path=audit_path)


def _decide(report: RunReport) -> int:
    """0 proceed; 130 interrupted; 2 a framework error; 1 a failure (or a check it blocked); 3 an
    error. Warnings and skips never refuse (``verify.strict`` is for ``mgn verify``)."""
    from mgn_verify._model import Status

    if report.interrupted:
        return 130
    if report.errors:
        return 2
    statuses = {r.status for r in report.results}
    if Status.FAIL in statuses:
        return 1
    if Status.ERROR in statuses:
        return 3
    return 1 if Status.BLOCKED in statuses else 0


def _audit(request: Preflight, ctx: CommandContext, loaded: LoadedSession, report: RunReport,
           overrides: list[dict[str, Any]], decision: str) -> tuple[str | None, int]:
    """Append the override to the audit log: (its path, 0), or (None, 2) when it cannot be
    written; then the override does not happen and the report says why."""
    from mgn_verify._audit import AuditError, append, audit_record
    from mgn_verify._exitcodes import ExitCode

    record = audit_record(command=request.command, argv=ctx.argv, gate=request.gate, clusters=request.clusters,
                          overrides=overrides, reason=request.reason, decision=decision,
                          redactor=loaded.config.redactor, run_id=report.run_id)
    try:
        return str(append(str(loaded.config["audit.path"]), record)), 0
    except AuditError as exc:
        report.errors.append(str(exc))
        report.exit_code = ExitCode.USAGE_ERROR
        return None, 2


def _set_gate(report: RunReport, request: Preflight, code: int, overrides: list[dict[str, Any]],
              audit_path: str | None, *, removed: list[dict[str, str]] | None = None,
              notes: list[str] | None = None) -> None:
    """The report's ``gate`` section; ``removed``: the members config took out (for an audit),
    ``notes``: what the gate could not run (a target without a local kubeconfig)."""
    decision = "refuse" if code != 0 else "dry_run" if request.dry_run else "proceed"
    report.gate = {"name": request.gate, "command": request.command, "clusters": list(request.clusters),
                   "decision": decision, "overrides": overrides, "reason": request.reason,
                   "audit_path": audit_path, "removed": removed or [], "notes": notes or []}


@dataclass(frozen=True)
class LocalGap:
    """A target cluster without a local kubeconfig, and the gate's members it therefore skips."""

    cluster: str
    layers: tuple[str, ...]
    members: tuple[str, ...]

    @property
    def message(self) -> str:
        layers = " and ".join(self.layers)
        return (f"cluster {self.cluster!r} has no local kubeconfig, so the gate does not run its {layers} checks "
                f"for it: {', '.join(self.members)} (only the Host App's view of it is checked); to run them, "
                f"configure clusters: [{{id: {self.cluster}, kubeconfig: PATH}}], or kubernetes.kubeconfig "
                f"with defaults.cluster: {self.cluster}")


def local_gaps(loaded: LoadedSession, gate: str, clusters: tuple[str, ...] | list[str]) -> list[LocalGap]:
    """The target clusters without a local kubeconfig (known only to the Host App, or to nobody)
    whose gate has members of the layers that need one (kubernetes, rethinkdb)."""
    import importlib

    from mgn_verify._gates import gate_layers

    layers = gate_layers(gate)
    layers = [layer for layer in ("kubernetes", "rethinkdb")
              if ("all" in layers or layer in layers) and layer in {p.name for p in loaded.plugins.loaded}]
    if not clusters or not layers:
        return []
    helpers: Any = importlib.import_module("mgn_verify.checks._clusters")
    book = loaded.gate_book()
    members = [cid for cid, gates, waivable in helpers.local_cluster_checks(layers)
               if book.would_include(gate, cid, gates, waivable)]
    if not members:
        return []
    local = {t.id for t in helpers.local_cluster_targets(loaded.config, gate_layers(gate))}
    found = tuple(layer for layer in layers if any(m.split(".", 1)[0] == layer for m in members))
    return [LocalGap(cluster, found, tuple(members)) for cluster in clusters if cluster not in local]


def _warn_ignored_outside(loaded: LoadedSession, request: Preflight, ids: list[str]) -> None:
    """An ignore pattern that matches loaded checks, none of them in this gate, waives nothing
    (one that matches no check at all is already warned about by the run)."""
    from mgn_verify._match import IdMatcher

    specs = loaded.graph.specs
    everywhere = IdMatcher(specs.values(), fold_case=True)
    here = IdMatcher([specs[cid] for cid in ids], fold_case=True)
    for pattern in request.ignore:
        if pattern.strip().lower() != "all" and everywhere.select(pattern) and not here.select(pattern):
            loaded.warn(f"--ignore-preflight-errors {pattern!r} matches no check of gate {request.gate!r}")


def _warn_without_reason(loaded: LoadedSession, report: RunReport, request: Preflight,
                         overrides: list[dict[str, Any]]) -> None:
    if request.reason.strip() or not any(o.get("waiver", "").startswith("--ignore") for o in overrides):
        return
    message = (f"overriding {len(overrides)} preflight failure{'' if len(overrides) == 1 else 's'} without "
               "--reason: say why with --reason TEXT (it is recorded in the audit log)")
    loaded.warn(message)
    report.warnings.append(message)


def _print_and_write(request: Preflight, loaded: LoadedSession, report: RunReport, outputs: list[Any],
                     signals: Any, *, full: bool) -> None:
    """The report files, and on stderr (stdout is the command's data) the full console report,
    root causes and remediation first, when it refuses, waived something or ``-v`` asked."""
    from mgn_verify.cli._emit import Output, emit

    outputs = list(outputs)
    if full and "console" in loaded.reporters.names():
        report.redact(loaded.config.redactor)
        _print_root_causes(request, report)
        outputs.insert(0, Output("console"))
    emit(report, outputs, loaded.reporters, loaded.config, stdout=sys.stderr, verbose=request.verbose,
         interrupted=signals.pending)


def _print_root_causes(request: Preflight, report: RunReport) -> None:
    from mgn_verify._text import escape_controls

    causes = report.root_causes()
    if not causes:
        return
    lines = [f"preflight {request.gate}{_clusters(request)}: root causes (fix these first):"]
    for result, blocked in causes:
        blocks = f"; blocks {len(blocked)}" if blocked else ""
        lines.append(f"  {result.id} ({result.status}{blocks}): {escape_controls(result.message)}")
        if result.remediation:
            lines.append(f"      fix: {escape_controls(result.remediation)}")
    print("\n".join(lines) + "\n", file=sys.stderr)


def _clusters(request: Preflight) -> str:
    return f" [{', '.join(request.clusters)}]" if request.clusters else ""


def _refusal_hint(loaded: LoadedSession, report: RunReport) -> str:
    """How to get past a refusal: an override, unless every root cause is a check that cannot
    be waived (then only fixing it helps)."""
    specs = loaded.graph.specs
    causes = [result.id for result, _ in report.root_causes()]
    stuck = [cid for cid in causes if cid in specs and not specs[cid].waivable]
    if causes and len(stuck) == len(causes):
        it = "it" if len(stuck) == 1 else "them"
        return f" ({', '.join(stuck)} cannot be overridden: fix {it} first)"
    return " (override with --ignore-preflight-errors=ID --reason TEXT)"


def _verdict(request: Preflight, report: RunReport, code: int, overrides: list[dict[str, Any]],
             audit_path: str | None, hint: str) -> None:
    """The one line that says what the preflight decided."""
    from mgn_verify._text import escape_controls

    counts = report.counts()
    head = f"preflight {request.gate}{_clusters(request)}"
    passed = counts["pass"]
    extras = [f"{counts[k]} {word}" for k, word in (("warn", "warning"), ("skip", "skipped")) if counts[k]]
    if code == 130:
        line = f"{head}: interrupted; nothing was changed"
    elif code != 0:
        found = [f"{counts[k]} {k}" for k in ("fail", "error", "blocked") if counts[k]]
        why = ", ".join(found) or "; ".join(report.errors[-1:]) or "refused"
        hint = "" if code == 2 else hint
        line = f"{head}: refused: {why} (exit {code}); nothing was changed{hint}"
    else:
        line = f"{head}: {passed} check{'' if passed == 1 else 's'} passed"
        if extras:
            line += f" ({', '.join(extras)})"
        if overrides:
            where = f"; recorded in {audit_path}" if audit_path else ""
            line += f", {len(overrides)} waived: {', '.join(o['id'] for o in overrides)}{where}"
        if request.dry_run:
            line += " (dry run)"
    print(escape_controls(line), file=sys.stderr)  # an audit path or a cluster id may carry escapes


def _fail_before_run(request: Preflight, ctx: CommandContext, message: str, code: int) -> PreflightOutcome:
    """Loading failed (a bad config, an unknown gate or cluster) or was interrupted: one line,
    and the requested report files still say why."""
    import contextlib

    from mgn_verify._exceptions import UsageError
    from mgn_verify._exitcodes import ExitCode
    from mgn_verify._report import RunReport
    from mgn_verify._reporting import builtin_reporters
    from mgn_verify.cli._emit import emit
    from mgn_verify.cli._options import error
    from mgn_verify.config import Config, Redactor, SettingsRegistry
    from mgn_verify.config.redact import scrub_argv

    if code != 130:
        error(message)
    else:
        print("mgn: interrupted", file=sys.stderr)
    report = RunReport.for_failure(message, argv=scrub_argv(ctx.argv), exit_code=ExitCode(code),
                                   interrupted=code == 130, selection=[])
    _set_gate(report, request, code, [], None)
    with contextlib.suppress(UsageError):
        emit(report, _outputs(request), builtin_reporters([]), Config({}, {}, SettingsRegistry(), Redactor()))
    return PreflightOutcome(proceed=False, exit_code=code, report=report)

"""``mgn federation deploy``: one workspace onto every cluster of a federation (§7's format).

::

    federation = load_federation("federation.yaml")       # UsageError naming file and key
    outcome = deploy(federation, Hooks(gate=..., act=..., rollback=...))
    outcome.exit_code                                      # 0, 1 or 130

The schedule (:func:`deploy`) is pure: the command supplies the three hooks. Each cluster is
gated on its own (in the calling thread, one after another, so the preflight reports never
interleave), then acted on:

- ``simultaneous``: every cluster (at most ``max_parallel`` at a time); a failure stops nothing;
- ``sequential``: one cluster after another, in priority order; the first failure stops the run;
- ``rolling``: batches of ``max_parallel`` (default 1) in priority order; a batch with a failure
  stops the run (the rest of that batch still finishes).

A refused cluster is a failed cluster, and nothing is sent to it. With ``rollback_on_failure``,
a run that failed (or was aborted by a usage/configuration error, exit 2) deletes what THIS run
created (never a workspace that was already there); after Ctrl-C nothing more is sent.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgn_verify._exceptions import MgnVerifyError, UsageError
from mgn_verify._text import describe_exception, first_line

from .exits import LifecycleExit

__all__ = ["MODES", "ActionResult", "ClusterResult", "Deployment", "DeploymentPolicy", "Federation",
           "FederationCluster", "GateVerdict", "Hooks", "deploy", "load_federation", "parse_federation"]

MODES = ("simultaneous", "sequential", "rolling")
ROLES = ("primary", "secondary")
_CLUSTER_KEYS = ("id", "name", "role", "weight", "region", "priority")
_DEPLOYMENT_KEYS = ("mode", "max_parallel", "wait_for_ready", "rollback_on_failure")
#: Sections of the §7 format that describe runtime behaviour a one-shot deploy does not have.
_IGNORED = ("load_balancing", "sync")


# -- the file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FederationCluster:
    id: str
    name: str = ""
    role: str = "secondary"
    weight: int | None = None
    region: str = ""
    priority: int | None = None


@dataclass(frozen=True)
class DeploymentPolicy:
    mode: str = "sequential"
    #: None: every cluster at once (simultaneous), one at a time (rolling).
    max_parallel: int | None = None
    wait_for_ready: bool = True
    rollback_on_failure: bool = False


@dataclass(frozen=True)
class Federation:
    name: str
    clusters: tuple[FederationCluster, ...]
    deployment: DeploymentPolicy = DeploymentPolicy()
    description: str = ""
    #: What the file holds that the deploy does not use (shown to the user as notes).
    notes: tuple[str, ...] = ()

    def ordered(self) -> list[str]:
        """Cluster ids by ``priority`` (lowest first; ties and clusters without one keep file order)."""
        indexed = list(enumerate(self.clusters))
        indexed.sort(key=lambda pair: (pair[1].priority is None, pair[1].priority or 0, pair[0]))
        return [c.id for _, c in indexed]

    def batches(self) -> list[list[str]]:
        ids = self.ordered()
        mode, size = self.deployment.mode, self.deployment.max_parallel
        if mode == "simultaneous":
            return [ids]
        step = 1 if mode == "sequential" else (size or 1)
        return [ids[i:i + step] for i in range(0, len(ids), step)]

    def workers(self, batch: Sequence[str]) -> int:
        if self.deployment.mode == "simultaneous" and self.deployment.max_parallel:
            return max(1, min(self.deployment.max_parallel, len(batch)))
        return max(1, len(batch))


def load_federation(path: str | Path) -> Federation:
    """Read and check a federation file; every problem is a ``UsageError`` naming the file and key."""
    from .files import read_yaml

    return parse_federation(read_yaml(path, "federation file"), str(path))


def parse_federation(data: Any, where: str = "<federation>") -> Federation:
    if not isinstance(data, Mapping) or not isinstance(data.get("federation"), Mapping):
        raise UsageError(f"{where}: expected a top-level 'federation' mapping")
    fed = data["federation"]
    notes = [f"{where}: federation.{key} is not used by 'mgn federation deploy' (ignored)"
             for key in fed if key in _IGNORED]
    notes += [f"{where}: unknown key federation.{key} (ignored)" for key in fed
              if key not in (*_IGNORED, "name", "description", "clusters", "deployment")]
    name = _opt_str(fed, "name", f"{where}: federation.name") or Path(where).stem
    description = _opt_str(fed, "description", f"{where}: federation.description")
    entries = fed.get("clusters")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{where}: federation.clusters: a non-empty list of clusters is required")
    clusters = tuple(_cluster(entry, f"{where}: federation.clusters[{i}]") for i, entry in enumerate(entries))
    seen: set[str] = set()
    for i, cluster in enumerate(clusters):
        if cluster.id in seen:
            raise UsageError(f"{where}: federation.clusters[{i}].id: duplicate cluster id {cluster.id!r}")
        seen.add(cluster.id)
    policy = _policy(fed.get("deployment"), f"{where}: federation.deployment")
    return Federation(name, clusters, policy, description, tuple(notes))


def _cluster(entry: Any, key: str) -> FederationCluster:
    if not isinstance(entry, Mapping):
        raise UsageError(f"{key}: a mapping {{id, name, role, weight, region, priority}} is expected")
    _no_unknown(entry, _CLUSTER_KEYS, key)
    raw_id = entry.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise UsageError(f"{key}.id: a non-empty cluster id is required")
    role = _opt_str(entry, "role", f"{key}.role") or "secondary"
    if role not in ROLES:
        raise UsageError(f"{key}.role: expected primary or secondary, got {role!r}")
    weight = _opt_int(entry, "weight", f"{key}.weight", minimum=0)
    priority = _opt_int(entry, "priority", f"{key}.priority", minimum=None)
    return FederationCluster(str(raw_id).strip(), _opt_str(entry, "name", f"{key}.name"), role, weight,
                             _opt_str(entry, "region", f"{key}.region"), priority)


def _policy(section: Any, key: str) -> DeploymentPolicy:
    if section is None:
        return DeploymentPolicy()
    if not isinstance(section, Mapping):
        raise UsageError(f"{key}: a mapping is expected")
    _no_unknown(section, _DEPLOYMENT_KEYS, key)
    mode = section.get("mode", "sequential")
    if mode not in MODES:
        raise UsageError(f"{key}.mode: expected one of {', '.join(MODES)}, got {mode!r}")
    return DeploymentPolicy(mode, _opt_int(section, "max_parallel", f"{key}.max_parallel", minimum=1),
                            _opt_bool(section, "wait_for_ready", f"{key}.wait_for_ready", True),
                            _opt_bool(section, "rollback_on_failure", f"{key}.rollback_on_failure", False))


def _no_unknown(mapping: Mapping[Any, Any], known: Sequence[str], key: str) -> None:
    for name in mapping:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            raise UsageError(f"{key}: unknown key {name!r}{hint}")


def _opt_str(mapping: Mapping[Any, Any], name: str, key: str) -> str:
    value = mapping.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{key}: a string is expected, got {type(value).__name__}")
    return str(value)


def _opt_int(mapping: Mapping[Any, Any], name: str, key: str, *, minimum: int | None) -> int | None:
    value = mapping.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise UsageError(f"{key}: an integer{bound} is expected, got {value!r}")
    return value


def _opt_bool(mapping: Mapping[Any, Any], name: str, key: str, default: bool) -> bool:
    value = mapping.get(name, default)
    if not isinstance(value, bool):
        raise UsageError(f"{key}: true or false is expected, got {value!r}")
    return value


# -- the schedule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateVerdict:
    """One cluster's preflight: ``label`` is what the summary shows (passed, waived, refused)."""

    proceed: bool
    exit_code: int = 0
    label: str = "passed"
    message: str = ""


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    action: str
    message: str = ""
    #: True when this run created the workspace (what a rollback may delete).
    created: bool = False
    #: Extra data for the JSON summary (e.g. the request a dry run would send).
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ClusterResult:
    cluster: str
    preflight: str = "-"
    action: str = "-"
    #: deployed, would deploy (dry run), failed, refused, skipped, rolled back, interrupted;
    #: pending (not started yet) and deploying while it runs
    status: str = "pending"
    message: str = ""
    created: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "preflight": self.preflight, "action": self.action,
                "status": self.status, "message": self.message, **self.data}


#: Statuses that count as a success.
OK_STATUSES = ("deployed", "would deploy")


@dataclass
class Hooks:
    """``gate(cluster)``; ``act(cluster, cancel)`` (return or raise ``MgnVerifyError``: a failed
    cluster; ``cancel`` is set on Ctrl-C); ``rollback(cluster)`` returns a message.
    ``progress(result)`` is told each cluster's outcome as it is known."""

    gate: Callable[[str], GateVerdict]
    act: Callable[[str, threading.Event], ActionResult]
    rollback: Callable[[str], str]
    progress: Callable[[ClusterResult], None] = lambda _result: None


@dataclass
class Deployment:
    results: list[ClusterResult]
    #: Set when a gate's answer is not about its cluster (usage error) or on Ctrl-C.
    abort_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.abort_code is None and all(r.status in OK_STATUSES for r in self.results)

    @property
    def exit_code(self) -> int:
        if self.abort_code is not None:
            return self.abort_code
        return int(LifecycleExit.OK if self.ok else LifecycleExit.FAILED)

    @property
    def status(self) -> str:
        if self.abort_code == LifecycleExit.INTERRUPTED:
            return "interrupted"
        return "ok" if self.ok else "failed"


def deploy(federation: Federation, hooks: Hooks, *, dry_run: bool = False) -> Deployment:
    """Gate and act on each cluster as ``federation.deployment`` says (see the module docs)."""
    order = federation.ordered()
    results = {cid: ClusterResult(cid) for cid in order}
    outcome = Deployment([results[cid] for cid in order])
    stops = federation.deployment.mode != "simultaneous"
    cancel = threading.Event()
    try:
        for batch in federation.batches():
            if not _run_batch(federation, batch, results, hooks, cancel, dry_run, outcome):
                break
            if stops and any(results[cid].status not in OK_STATUSES for cid in batch):
                break
    except KeyboardInterrupt:
        cancel.set()
        outcome.abort_code = LifecycleExit.INTERRUPTED
        for result in outcome.results:
            if result.status == "deploying":
                result.status, result.message = "interrupted", "interrupted while deploying: the workspace may exist"
            elif result.status == "pending":
                result.status, result.message = "interrupted", "interrupted before it started"
        return outcome
    for result in outcome.results:
        if result.status == "pending":
            result.status = "skipped"
            result.message = "not started: the deployment stopped at an earlier failure"
            hooks.progress(result)
    # An abort (exit 2, e.g. a later gate could not write the audit log) still rolls back what
    # this run created; only Ctrl-C (returned above) sends nothing more.
    if not outcome.ok and federation.deployment.rollback_on_failure:
        _roll_back(outcome, hooks)
    return outcome


def _run_batch(federation: Federation, batch: list[str], results: dict[str, ClusterResult], hooks: Hooks,
               cancel: threading.Event, dry_run: bool, outcome: Deployment) -> bool:
    """Gate each cluster of the batch, then act on those that passed; False: abort the run."""
    admitted = []
    for cid in batch:
        verdict = hooks.gate(cid)
        result = results[cid]
        result.preflight = verdict.label
        if verdict.exit_code == LifecycleExit.INTERRUPTED:  # Ctrl-C during its preflight
            raise KeyboardInterrupt
        if verdict.exit_code == LifecycleExit.USAGE_ERROR:  # not about this cluster: stop everything
            outcome.abort_code = verdict.exit_code
            result.status, result.message = "refused", verdict.message
            return False
        if not verdict.proceed:
            result.status = "refused"
            result.message = verdict.message or "refused by the federation.deploy preflight gate"
            hooks.progress(result)
            continue
        admitted.append(cid)
    if admitted:
        _act_all(admitted, federation.workers(admitted), results, hooks, cancel, dry_run)
    return True


def _act_all(clusters: list[str], workers: int, results: dict[str, ClusterResult], hooks: Hooks,
             cancel: threading.Event, dry_run: bool) -> None:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mgn-federation")
    futures: dict[Future[ActionResult], str] = {pool.submit(hooks.act, cid, cancel): cid for cid in clusters}
    for cid in clusters:
        results[cid].status = "deploying"
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                _record(results[futures[future]], future, dry_run)
                hooks.progress(results[futures[future]])
    finally:
        # On Ctrl-C the workers see ``cancel`` and stop polling; never wait for them here.
        pool.shutdown(wait=False, cancel_futures=True)


def _record(result: ClusterResult, future: Future[ActionResult], dry_run: bool) -> None:
    try:
        action = future.result()
    except MgnVerifyError as exc:  # the act hook returns what it knows; this is what it did not expect
        result.status, result.message = "failed", first_line(str(exc))
        return
    except Exception as exc:  # a bug in a worker fails its cluster, never the whole run with a traceback
        result.status, result.message = "failed", describe_exception(exc)
        return
    result.action, result.message, result.created = action.action, action.message, action.created
    result.data.update(action.data)
    result.status = ("would deploy" if dry_run else "deployed") if action.ok else "failed"


def _roll_back(outcome: Deployment, hooks: Hooks) -> None:
    for result in outcome.results:
        if not result.created:
            continue
        try:
            message = hooks.rollback(result.cluster)
        except Exception as exc:  # one cluster's failed rollback must not stop the others
            said = first_line(str(exc)) if isinstance(exc, MgnVerifyError) else describe_exception(exc)
            result.message = f"{result.message}; rollback failed: {said}".lstrip("; ")
        else:
            result.status = "rolled back"
            result.message = f"{result.message}; {message}".lstrip("; ")
            result.created = False
        hooks.progress(result)

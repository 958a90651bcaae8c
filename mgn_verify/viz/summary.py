"""What both screens of ``mgn viz`` say, worked out once: the state words of a layer, the
overall verdict and its problems, and the one rule for every shown string (redacted, control
characters escaped)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._text import escape_controls
from .preflight import layer_results

if TYPE_CHECKING:
    from .._report import RunReport
    from ..config.redact import Redactor
    from ..history.compare import Change
    from .collect import ClusterView, Snapshot
    from .preflight import PreflightView

__all__ = ["ARROW", "Clean", "LayerState", "cleaner", "counts_text", "layer_state", "move", "problems", "record_text",
           "split_changes",
           "status_text"]

ARROW = "→"
_ORDER = ("fail", "error", "blocked", "warn", "waived", "pass", "skip")
Clean = Callable[[str], str]


def cleaner(redactor: Redactor) -> Clean:
    """Every string the dashboard shows goes through this: secrets masked, and no control
    character reaches the terminal (a message could otherwise move the cursor)."""
    return lambda text: escape_controls(redactor.text(str(text)))


def counts_text(counts: dict[str, int]) -> str:
    """``54 pass, 1 warn, 1 skip`` (the bad statuses first)."""
    return ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts.get(s)) or "no checks"


@dataclass(frozen=True)
class LayerState:
    """``word``: ok, warn, failing, unknown (no report yet); ``detail``: the counts, or the
    first failing check and its message."""

    word: str
    detail: str


def layer_state(report: RunReport | None, layer: str, cluster: str | None = None) -> LayerState:
    if report is None:
        return LayerState("unknown", "waiting for the first preflight run")
    counts = layer_results(report, layer, cluster)
    if not counts:
        return LayerState("unknown", "not checked")
    bad = next((r for r in report.results if r.layer == layer and (cluster is None or r.target == cluster)
                and str(r.status) in ("fail", "error", "blocked")), None)
    if bad is not None:
        return LayerState("failing", f"{bad.id}: {bad.message}" if bad.message else bad.id)
    return LayerState("warn" if counts.get("warn") else "ok", counts_text(counts))


def record_text(cluster: ClusterView) -> str:
    """The Host App's record of the cluster and its ``/api/health`` entry, in words."""
    from .collect import UNKNOWN

    if cluster.state == UNKNOWN:
        return "unknown (the Host App does not answer)"
    text = cluster.state or "no Host App record"
    health = cluster.health
    if health is not None:
        text += f", health {health.status}" + (f" ({health.code})" if health.code else "")
    return text


def status_text(cluster: ClusterView) -> str:
    """The cluster's ``/status`` in words."""
    if cluster.status_error:
        return cluster.status_error
    status = cluster.status
    if status is None:
        return "not asked"
    if status.ok:
        return "kubeconfig valid, Kubernetes reachable" + (", tsnet" if status.tsnet_available else "")
    if not status.kubeconfig_present:
        return "no kubeconfig (" + (status.recommended_action or "attach_kubeconfig") + ")"
    why = f": {status.k8s_error}" if status.k8s_error else ""
    return f"Kubernetes unreachable{why}"


def problems(snapshot: Snapshot, view: PreflightView) -> list[str]:
    """Everything failing, one phrase each; empty means healthy."""
    found: list[str] = []
    if snapshot.error:
        found.append(f"collecting failed: {snapshot.error}")
    if not snapshot.hostapp.ok:
        found.append("Host App: " + (snapshot.hostapp.error or "not healthy"))
    found.extend(f"--cluster {name}: no such cluster" for name in snapshot.unmatched)
    for cluster in snapshot.clusters:
        if cluster.problems():
            found.append(f"cluster {cluster.id}: {', '.join(cluster.problems())}")
    if view.error:
        found.append(f"preflight could not run: {view.error}")
    failing = view.failing
    if failing:
        found.append(f"{len(failing)} preflight check(s) failing: {', '.join(failing[:3])}"
                     + (", ..." if len(failing) > 3 else ""))
    return found


def split_changes(changes: tuple[Change, ...]) -> tuple[list[Change], int]:
    """The changes worth a line each (failures first) and how many others only became or stopped
    being ``blocked``: one failing requirement blocks twenty checks, which would bury it."""
    def blocked(change: Change) -> bool:
        return any(state is not None and state.status == "blocked" for state in (change.before, change.after))

    shown = [c for c in changes if not blocked(c)]
    shown.sort(key=lambda c: c.after is None or c.after.status not in ("fail", "error"))
    return shown, len(changes) - len(shown)


def move(change: Change) -> tuple[str, str]:
    """(before, after) status words of a change; ``new`` / ``removed`` for a missing side."""
    return (change.before.status if change.before else "new", change.after.status if change.after else "removed")

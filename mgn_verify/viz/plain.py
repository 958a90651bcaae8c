"""The one-shot text of ``mgn viz`` (stdout is not a terminal): the dashboard's content as plain
lines, no colour and no escape codes, ending with the verdict line."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .summary import ARROW, counts_text, layer_state, move, problems, record_text, split_changes, status_text

if TYPE_CHECKING:
    from .collect import ClusterView, Snapshot
    from .preflight import PreflightView
    from .summary import Clean

__all__ = ["render_text"]

_INDENT = "  "
#: Failing checks listed in full; the rest are counted.
_MAX_FAILING = 20


def _clock(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def render_text(snapshot: Snapshot, view: PreflightView, clean: Clean) -> str:
    lines = [f"mgn viz snapshot at {_clock(snapshot.taken_at)}"]
    hostapp = snapshot.hostapp
    lines.append(f"Host App {clean(hostapp.url)}: " + ("ok" if hostapp.ok else f"DOWN: {clean(hostapp.error or '')}"))
    for entry in hostapp.headscale:
        lines.append(f"Headscale {clean(entry.id)}: {clean(entry.status)}")
    tailnet = layer_state(view.report, "tailscale")
    lines.append(f"Tailnet: {tailnet.word} ({clean(tailnet.detail)})")
    if snapshot.error:
        lines.append(f"collecting failed: {clean(snapshot.error)}")
    if not snapshot.clusters:
        lines.append("no cluster to show")
    for cluster in snapshot.clusters:
        lines.extend(["", *_cluster(cluster, view, clean)])
    lines.extend(["", *_preflight(view, clean)])
    found = problems(snapshot, view)
    lines.extend(["", "verdict: healthy" if not found else "verdict: FAILING: " + "; ".join(map(clean, found))])
    return "\n".join(lines) + "\n"


def _cluster(cluster: ClusterView, view: PreflightView, clean: Clean) -> list[str]:
    name = f"{clean(cluster.name)} (id {clean(cluster.id)})" if cluster.name != cluster.id else clean(cluster.id)
    found = cluster.problems()
    lines = [f"cluster {name}: " + ("ok" if not found else "FAILING: " + clean("; ".join(found)))]
    lines.append(f"{_INDENT}record: {clean(record_text(cluster))}")
    lines.append(f"{_INDENT}status: {clean(status_text(cluster))}")
    if cluster.nodes is None:
        lines.append(f"{_INDENT}nodes: unknown: {clean(cluster.nodes_error or '')}")
    else:
        ready = sum(n.ready for n in cluster.nodes)
        lines.append(f"{_INDENT}nodes: {ready}/{len(cluster.nodes)} Ready")
        for node in cluster.nodes:
            state = "Ready" if node.ready else "NotReady"
            extra = f"  {', '.join(node.problems)}" if node.problems else ""
            lines.append(f"{_INDENT * 2}{clean(node.name)}  {state}  {clean(node.version) or '-'}  "
                         f"{clean(node.roles)}{clean(extra)}")
    if cluster.workspaces is None:
        lines.append(f"{_INDENT}workspaces: unknown: {clean(cluster.workspaces_error or '')}")
    else:
        lines.append(f"{_INDENT}workspaces: {len(cluster.workspaces)}")
        for ws in cluster.workspaces:
            lines.append(f"{_INDENT * 2}{clean(ws.name)}  {clean(ws.status)}  phase {clean(ws.phase or '-')}  "
                         f"{clean(ws.image)}")
    rdb = layer_state(view.report, "rethinkdb", cluster.id)
    lines.append(f"{_INDENT}rethinkdb: {rdb.word} ({clean(rdb.detail)})")
    return lines


def _preflight(view: PreflightView, clean: Clean) -> list[str]:
    report = view.report
    if view.error:
        return [f"preflight: could not run: {clean(view.error)}"]
    if report is None:
        return ["preflight: not run yet"]
    counts: dict[str, int] = {}
    for result in report.results:
        counts[str(result.status)] = counts.get(str(result.status), 0) + 1
    lines = [f"preflight: {counts_text(counts)} (exit {int(report.exit_code)}, {report.duration_s:.1f} s)"]
    bad = [r for r in report.results if str(r.status) in ("fail", "error")]
    for result in bad[:_MAX_FAILING]:
        lines.append(f"{_INDENT}{result.status}  {clean(result.id)}  {clean(result.message)}")
    if len(bad) > _MAX_FAILING:
        lines.append(f"{_INDENT}... and {len(bad) - _MAX_FAILING} more")
    shown, others = split_changes(view.changed)
    for change in shown:
        before, after = move(change)
        lines.append(f"{_INDENT}changed: {clean(change.id)}  {before} {ARROW} {after}")
    if others:
        lines.append(f"{_INDENT}changed: {others} more became or stopped being blocked")
    return lines

"""The live screen of ``mgn viz``, drawn with rich: a header, one panel per cluster (status,
nodes, workspaces, RethinkDB), the tailnet, the preflight with its failing checks, and the
recent transitions, those of the last ``highlight_window(refresh)`` seconds highlighted (the
latest run's alone would flash by at a short ``--refresh``).

Every string is shown as ``rich.text.Text`` (never markup), after ``clean`` (redacted, control
characters escaped): a message cannot restyle the screen nor leak a secret.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .summary import ARROW, counts_text, layer_state, move, problems, record_text, split_changes, status_text

if TYPE_CHECKING:
    from .collect import ClusterView, Snapshot
    from .preflight import PreflightView
    from .summary import Clean

__all__ = ["CHANGED", "HIGHLIGHT_S", "highlight_window", "render_screen"]

_STYLE = {"ok": "green", "pass": "green", "running": "green", "Running": "green", "warn": "yellow",
          "pending": "yellow", "Pending": "yellow", "skip": "dim", "waived": "dim", "unknown": "yellow",
          "fail": "bold red", "error": "bold red", "blocked": "red", "failing": "bold red", "failed": "bold red",
          "DOWN": "bold red"}
#: The highlight of a check whose status changed recently.
CHANGED = "bold black on yellow"
#: How long a transition stays highlighted, at least (three refreshes when they are longer).
HIGHLIGHT_S = 30.0
_MAX_NODES = 8
_MAX_WORKSPACES = 8
_MAX_FAILING = 10
_MAX_TRANSITIONS = 10
#: Terminal columns from which nodes and workspaces are shown side by side.
_SIDE_BY_SIDE = 120


def _word(word: str) -> Text:
    return Text(word, style=_STYLE.get(word, ""))


def _clock(stamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(stamp)) if stamp else "-"


def highlight_window(refresh: float) -> float:
    return max(HIGHLIGHT_S, 3 * refresh)


def _hot(view: PreflightView, window: float) -> frozenset[tuple[float, str]]:
    """(run start, check id) of the transitions still highlighted."""
    since = time.time() - window
    return frozenset((stamp, c.id) for stamp, found in view.recent if stamp >= since for c in found)


def render_screen(snapshot: Snapshot | None, view: PreflightView, clean: Clean, *, refresh: float,
                  keys: bool, width: int = 160) -> RenderableType:
    """The whole screen; ``snapshot`` is None until the first one is collected."""
    parts: list[RenderableType] = [_header(snapshot, view, clean, refresh, keys)]
    if snapshot is None:
        parts.append(Text("collecting the first snapshot…", style="dim"))
        return Group(*parts)
    for cluster in snapshot.clusters:
        parts.append(_cluster(cluster, view, clean, side_by_side=width >= _SIDE_BY_SIDE))
    if not snapshot.clusters:
        parts.append(Text("no cluster to show", style="yellow"))
    window = highlight_window(refresh)
    hot = _hot(view, window)
    parts.append(_preflight(view, clean, {check_id for _, check_id in hot}))
    if view.recent:
        parts.append(_transitions(view, clean, hot, window))
    return Group(*parts)


def _header(snapshot: Snapshot | None, view: PreflightView, clean: Clean, refresh: float, keys: bool) -> Table:
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(ratio=1)
    grid.add_column(justify="right")
    title = Text("mgn viz", style="bold")
    hint = Text(f"refresh {refresh:g} s · updated {_clock(snapshot.taken_at if snapshot else None)}"
                + (" · q quit" if keys else " · Ctrl-C quit"), style="dim")
    grid.add_row(title, hint)
    if snapshot is None:
        return grid
    hostapp = snapshot.hostapp
    line = Text.assemble("Host App ", clean(hostapp.url), " ", _word("ok" if hostapp.ok else "DOWN"))
    if hostapp.error:
        line.append(f"  {clean(hostapp.error)}", style="red")
    for entry in hostapp.headscale:
        line.append(f"   Headscale {clean(entry.id)} ")
        line.append_text(_word(clean(entry.status)))
    tailnet = layer_state(view.report, "tailscale")
    line.append("   Tailnet ")
    line.append_text(_word(tailnet.word))
    if tailnet.word not in ("ok", "unknown"):
        line.append(f" {clean(tailnet.detail)}", style="red" if tailnet.word == "failing" else "yellow")
    grid.add_row(line, "")
    found = problems(snapshot, view)
    verdict = Text("verdict: ", style="bold")
    verdict.append_text(Text("healthy", style="bold green") if not found
                        else Text("FAILING: " + "; ".join(map(clean, found)), style="bold red"))
    grid.add_row(verdict, "")
    if snapshot.error:
        grid.add_row(Text(f"collecting failed: {clean(snapshot.error)}", style="red"), "")
    return grid


def _cluster(cluster: ClusterView, view: PreflightView, clean: Clean, *, side_by_side: bool) -> Panel:
    found = cluster.problems()
    title = Text.assemble(("cluster ", "bold"), (clean(cluster.name), "bold"),
                          (f" ({clean(cluster.id)})" if cluster.name != cluster.id else "", "dim"), " ",
                          _word("ok" if not found else "failing"))
    info = Table.grid(padding=(0, 1))
    info.add_column(style="dim")
    info.add_column()
    info.add_row("record", Text(clean(record_text(cluster))))
    status = Text(clean(status_text(cluster)), style="green" if cluster.status and cluster.status.ok else "red")
    info.add_row("status", status)
    rdb = layer_state(view.report, "rethinkdb", cluster.id)
    info.add_row("rethinkdb", Text.assemble(_word(rdb.word), " ", clean(rdb.detail)))
    tables = Table.grid(padding=(0, 3))
    if side_by_side:
        tables.add_row(_nodes(cluster, clean), _workspaces(cluster, clean))
    else:  # a narrow terminal: one above the other, or their columns would be cut to nothing
        tables.add_row(_nodes(cluster, clean))
        tables.add_row(_workspaces(cluster, clean))
    border = "green" if not found else "red"
    return Panel(Group(info, tables), title=title, title_align="left", border_style=border, box=box.ROUNDED)


def _nodes(cluster: ClusterView, clean: Clean) -> RenderableType:
    if cluster.nodes is None:
        return Text(f"nodes: {clean(cluster.nodes_error or 'unknown')}", style="red")
    ready = sum(n.ready for n in cluster.nodes)
    table = Table(title=f"nodes {ready}/{len(cluster.nodes)} Ready", title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 1))
    for column in ("node", "state", "version", "roles"):
        table.add_column(column)
    for node in cluster.nodes[:_MAX_NODES]:
        state = "Ready" if node.ready else "NotReady " + ",".join(node.problems)
        table.add_row(clean(node.name), Text(clean(state), style="green" if node.ready else "bold red"),
                      clean(node.version) or "-", clean(node.roles))
    if len(cluster.nodes) > _MAX_NODES:
        table.add_row(f"… {len(cluster.nodes) - _MAX_NODES} more", "", "", "")
    return table


def _workspaces(cluster: ClusterView, clean: Clean) -> RenderableType:
    if cluster.workspaces is None:
        return Text(f"workspaces: {clean(cluster.workspaces_error or 'unknown')}", style="red")
    if not cluster.workspaces:
        return Text("workspaces: none", style="dim")
    table = Table(title=f"workspaces {len(cluster.workspaces)}", title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 1))
    for column in ("workspace", "status", "phase", "image"):
        table.add_column(column)
    for ws in cluster.workspaces[:_MAX_WORKSPACES]:
        table.add_row(clean(ws.name), _word(clean(ws.status)), _word(clean(ws.phase or "-")), clean(ws.image))
    if len(cluster.workspaces) > _MAX_WORKSPACES:
        table.add_row(f"… {len(cluster.workspaces) - _MAX_WORKSPACES} more", "", "", "")
    return table


def _preflight(view: PreflightView, clean: Clean, hot: set[str]) -> RenderableType:
    report = view.report
    title = Text.assemble(("preflight", "bold"), " ", ("running…" if view.running else "", "dim"))
    if view.error:
        return Panel(Text(f"could not run: {clean(view.error)}", style="bold red"), title=title, title_align="left",
                     border_style="red", box=box.ROUNDED)
    if report is None:
        return Panel(Text("first run under way…", style="dim"), title=title, title_align="left", box=box.ROUNDED)
    counts: dict[str, int] = {}
    for result in report.results:
        counts[str(result.status)] = counts.get(str(result.status), 0) + 1
    line = Text(f"{counts_text(counts)} · run {view.runs} took {report.duration_s:.1f} s, "
                f"finished {_clock(view.finished_at)}")
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column(width=7)
    table.add_column(no_wrap=True, max_width=48)
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    bad = [r for r in report.results if str(r.status) in ("fail", "error")]
    for result in bad[:_MAX_FAILING]:
        style = CHANGED if result.id in hot else ""
        table.add_row(_word(str(result.status)), Text(clean(result.id), style=style), clean(result.message))
    if len(bad) > _MAX_FAILING:
        table.add_row("", Text(f"… {len(bad) - _MAX_FAILING} more failing", style="dim"), "")
    border = "red" if bad else "green"
    return Panel(Group(line, table) if bad else line, title=title, title_align="left", border_style=border,
                 box=box.ROUNDED)


def _transitions(view: PreflightView, clean: Clean, hot: frozenset[tuple[float, str]], window: float) -> Panel:
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column(width=8, style="dim")
    table.add_column(no_wrap=True, max_width=48)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    rows = 0
    for stamp, found in view.recent:
        shown, others = split_changes(found)
        for change in shown[:max(_MAX_TRANSITIONS - rows, 1)]:
            before, after = move(change)
            message = change.after.message if change.after else ""
            table.add_row(_clock(stamp), Text(clean(change.id), style=CHANGED if (stamp, change.id) in hot else ""),
                          Text.assemble(_word(before), f" {ARROW} ", _word(after)), clean(message))
            rows += 1
        if others:
            table.add_row(_clock(stamp), Text(f"+ {others} became or stopped being blocked", style="dim"), "", "")
            rows += 1
        if rows >= _MAX_TRANSITIONS:
            break
    title = Text(f"transitions (highlighted: the last {window:g} s)", style="bold")
    return Panel(table, title=title, title_align="left",
                 box=box.ROUNDED)

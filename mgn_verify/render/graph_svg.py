"""The dependency graph as SVG: one node per check coloured by status, edges pointing at what
is required, failed root causes and the chains they block drawn in red.

Pure text, no dependencies: inline in the HTML report (``standalone=False``: no XML prolog, no
namespace, which an HTML parser does not need) or a file of its own (``mgn verify graph
--format svg``). Labels use a monospace font stack so widths can be computed here; every text is
escaped and stripped of characters XML cannot carry.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .layout import GraphNode, Layout, layout

if TYPE_CHECKING:
    from .._report import RunReport

__all__ = ["GLYPHS", "PALETTE", "STATUS_ORDER", "escape", "nodes_from_report", "render_svg"]

#: Report order of the statuses (and ``not-run``: the catalogue drawn without a run).
STATUS_ORDER = ("fail", "error", "blocked", "warn", "waived", "skip", "pass", "not-run")
#: status -> (fill, stroke): light fills so the dark label stays legible on every one.
PALETTE = {
    "pass": ("#e3f4e4", "#2e7d32"), "warn": ("#fff3c4", "#b07d00"), "fail": ("#fdd8d8", "#c62828"),
    "error": ("#f1dcf7", "#7b1fa2"), "skip": ("#eceff1", "#78909c"), "blocked": ("#ffe3c7", "#d35400"),
    "waived": ("#dcebff", "#1565c0"), "not-run": ("#f4f4f4", "#8a8a8a"),
}
#: A glyph per status, so the picture does not rely on colour alone.
GLYPHS = {"pass": "✓", "warn": "!", "fail": "✗", "error": "E", "skip": "-", "blocked": "⊘", "waived": "~",
          "not-run": "·"}
_BLOCKING = ("fail", "error", "blocked")
_RED = "#c62828"
_EDGE = "#9aa5ad"

_FONT = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
_FONT_PX = 11
_CHAR_PX = 6.7          # advance of one monospace character at 11 px (0.6 em, rounded up)
_LABEL_CHARS = 44       # longer ids are shortened in the middle (the tooltip has all of it)
_NODE_H, _PITCH, _GAP, _PAD = 20, 26, 64, 8
_LEGEND_H = 40

# XML 1.0 cannot carry these at all, not even escaped.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """Text safe in HTML and XML (element content and quoted attributes alike)."""
    return html.escape(_ILLEGAL_XML.sub("\ufffd", text), quote=True)


def nodes_from_report(report: RunReport) -> tuple[list[GraphNode], dict[str, tuple[str, ...]]]:
    """The picture of a (redacted) run: its results with their resolved ``requires``."""
    roots = {result.id for result, _ in report.root_causes()}
    nodes = [GraphNode(r.id, r.layer, str(r.status), r.title, r.message, r.id in roots) for r in report.results]
    return nodes, {r.id: tuple(r.requires) for r in report.results}


def render_svg(nodes: Sequence[GraphNode], requires: Mapping[str, Sequence[str]], *, standalone: bool = False,
               links: Mapping[str, str] | None = None, max_rows: int = 24) -> str:
    """The SVG text; ``links`` maps ids to in-page fragments (``#check-3``) the nodes link to."""
    placed = layout(nodes, requires, max_rows=max_rows)
    xs, widths = _columns(placed)
    width = max(_legend_width(nodes), (xs[-1] + widths[-1] + _PAD) if xs else 0)
    height = _LEGEND_H + int(placed.rows * _PITCH) + _PAD
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    out = [f'<svg{namespace} class="mgn-graph" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="{_FONT}" font-size="{_FONT_PX}">',
           f"<title>Dependency graph: {len(nodes)} check{'' if len(nodes) == 1 else 's'}</title>",
           _defs(), *_legend(nodes)]
    centre = {cid: _LEGEND_H + p.y * _PITCH + _NODE_H / 2 for cid, p in placed.placed.items()}
    out += _edges(placed, xs, centre)
    out += [_node(p.node, xs[p.column], centre[cid], (links or {}).get(cid))
            for cid, p in placed.placed.items()]
    out.append("</svg>")
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" if standalone else "") + "\n".join(out) + "\n"


def _label(node: GraphNode) -> str:
    text = node.id
    if len(text) > _LABEL_CHARS:
        keep = _LABEL_CHARS - 1
        text = text[: keep - keep // 3] + "…" + text[len(text) - keep // 3:]
    return f"{GLYPHS.get(node.status, '?')} {text}"


def _node_width(node: GraphNode) -> int:
    return int(len(_label(node)) * _CHAR_PX) + 2 * _PAD


def _columns(placed: Layout) -> tuple[list[int], list[int]]:
    """Left edge and width of each column (each as wide as its widest label)."""
    widths = [0] * placed.columns
    for p in placed.placed.values():
        widths[p.column] = max(widths[p.column], _node_width(p.node))
    xs, x = [], _PAD
    for w in widths:
        xs.append(x)
        x += w + _GAP
    return xs, widths


def _defs() -> str:
    def marker(name: str, colour: str) -> str:
        return (f'<marker id="{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
                f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')

    return f"<defs>{marker('mgn-arrow', _EDGE)}{marker('mgn-arrow-red', _RED)}</defs>"


def _present(nodes: Iterable[GraphNode]) -> list[tuple[str, int]]:
    tally: dict[str, int] = {}
    for node in nodes:
        tally[node.status] = tally.get(node.status, 0) + 1
    return [(s, tally[s]) for s in STATUS_ORDER if s in tally] + sorted(
        (s, n) for s, n in tally.items() if s not in STATUS_ORDER)


def _legend_entries(nodes: Sequence[GraphNode]) -> list[str]:
    entries = [f"{GLYPHS.get(s, '?')} {s} {n}" for s, n in _present(nodes)]
    if any(n.root for n in nodes):
        entries += ["root cause", "blocks"]
    return [*entries, "→ requires"]


def _legend_width(nodes: Sequence[GraphNode]) -> int:
    return _PAD + sum(int(len(e) * _CHAR_PX) + 34 for e in _legend_entries(nodes))


def _legend(nodes: Sequence[GraphNode]) -> list[str]:
    """Swatches with counts, then what the red outline and red edges mean."""
    out = ['<g class="legend">']
    x, y = _PAD, 10
    for status, count in _present(nodes):
        fill, stroke = PALETTE.get(status, PALETTE["not-run"])
        text = f"{GLYPHS.get(status, '?')} {status} {count}"
        out.append(f'<rect x="{x}" y="{y}" width="{int(len(text) * _CHAR_PX) + 14}" height="{_NODE_H}" rx="4" '
                   f'fill="{fill}" stroke="{stroke}"/><text x="{x + 7}" y="{y + 14}">{escape(text)}</text>')
        x += int(len(text) * _CHAR_PX) + 34
    if any(n.root for n in nodes):
        out.append(f'<rect x="{x}" y="{y}" width="88" height="{_NODE_H}" rx="4" fill="#ffffff" stroke="{_RED}" '
                   f'stroke-width="3"/><text x="{x + 8}" y="{y + 14}">root cause</text>')
        x += 118
        out.append(f'<path d="M{x + 50},{y + 10} L{x},{y + 10}" stroke="{_RED}" stroke-width="2.2" '
                   f'marker-end="url(#mgn-arrow-red)"/><text x="{x + 56}" y="{y + 14}">blocks</text>')
        x += 110
    out.append(f'<path d="M{x + 40},{y + 10} L{x},{y + 10}" stroke="{_EDGE}" stroke-width="1.2" '
               f'marker-end="url(#mgn-arrow)"/><text x="{x + 46}" y="{y + 14}">requires</text>')
    out.append("</g>")
    return out


def _edges(placed: Layout, xs: list[int], centre: Mapping[str, float]) -> list[str]:
    """Curves from a dependent's left side to the right side of what it requires; the ones a
    block travelled along (a blocked check to a failed or blocked one) in red, drawn last."""
    plain: list[str] = []
    red: list[str] = []
    for cid, deps in placed.requires.items():
        src = placed.placed[cid]
        for dep in deps:
            dst = placed.placed[dep]
            x1, y1 = xs[src.column], centre[cid]
            x2, y2 = xs[dst.column] + _node_width(dst.node), centre[dep]
            bend = max(20.0, (x1 - x2) / 2)
            blocking = src.node.status == "blocked" and dst.node.status in _BLOCKING
            style = (f'stroke="{_RED}" stroke-width="2.2" marker-end="url(#mgn-arrow-red)"' if blocking
                     else f'stroke="{_EDGE}" stroke-width="1" stroke-opacity="0.75" marker-end="url(#mgn-arrow)"')
            path = (f'<path class="edge{" blocking" if blocking else ""}" data-from="{escape(cid)}" '
                    f'data-to="{escape(dep)}" d="M{x1},{y1:.1f} C{x1 - bend:.1f},{y1:.1f} {x2 + bend:.1f},{y2:.1f} '
                    f'{x2 + 1},{y2:.1f}" fill="none" {style}/>')
            (red if blocking else plain).append(path)
    return ['<g class="edges">', *plain, *red, "</g>"]


def _node(node: GraphNode, x: int, centre: float, link: str | None) -> str:
    fill, stroke = PALETTE.get(node.status, PALETTE["not-run"])
    outline = f'stroke="{_RED}" stroke-width="3"' if node.root else f'stroke="{stroke}" stroke-width="1.2"'
    tip = f"{node.id} — {node.status}" + (f": {node.message}" if node.message else "")
    if node.title and node.title != node.id:
        tip += f"\n{node.title}"
    top = centre - _NODE_H / 2
    classes = f"node status-{escape(node.status)}" + (" root-cause" if node.root else "")
    bold = ' font-weight="bold"' if node.root else ""
    body = (f'<title>{escape(tip)}</title><rect x="{x}" y="{top:.1f}" width="{_node_width(node)}" '
            f'height="{_NODE_H}" rx="4" fill="{fill}" {outline}/>'
            f'<text x="{x + _PAD}" y="{top + 14:.1f}" fill="#1d2327"{bold}>{escape(_label(node))}</text>')
    if link is not None:
        body = f'<a href="{escape(link)}">{body}</a>'
    return f'<g class="{classes}" data-id="{escape(node.id)}" data-status="{escape(node.status)}">{body}</g>'

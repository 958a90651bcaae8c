"""The ``html`` reporter (``--html PATH``, ``-o html``): one self-contained offline page.

The verdict and counts first, then the root causes with what they block, a table per layer
(status, message with its line breaks, remediation, duration) and the dependency graph as
inline SVG (``mgn_verify.render``). No scripts, no external styles, fonts or links: the file
can be mailed or archived as a CI artifact and opened anywhere. Every text comes from the
(already redacted) report and is escaped.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from .._model import Result, Status, layer_sort_key
from .._reporting import ReporterContext, ReporterRegistry
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._report import RunReport

__all__ = ["HtmlReporter", "verdict"]

#: exit code -> (verdict, banner class)
_VERDICTS = {0: ("PASSED", "v-ok"), 1: ("FAILED", "v-bad"), 2: ("ERROR", "v-bad"), 3: ("ERRORS", "v-bad"),
             4: ("WARNINGS", "v-warn"), 130: ("INTERRUPTED", "v-bad")}


def verdict(report: RunReport) -> str:
    """One line: ``FAILED: 3 fail, 23 blocked of 108 checks (exit 1)``."""
    word, _ = _VERDICTS.get(int(report.exit_code), ("DONE", "v-warn"))
    if word == "PASSED" and report.counts()["warn"]:
        word = "PASSED with warnings"
    notable = [f"{n} {s}" for s, n in _counts(report) if s != "pass"]
    total = len(report.results)
    return (f"{word}: {', '.join(notable) or 'all passed'} of {total} check{'' if total == 1 else 's'} "
            f"(exit {int(report.exit_code)})")


#: Most urgent first (the graph's legend uses the same order).
_ORDER = ("fail", "error", "blocked", "warn", "waived", "skip", "pass")


def _counts(report: RunReport) -> list[tuple[str, int]]:
    counts = report.counts()
    return [(s, counts[s]) for s in sorted(counts, key=lambda s: _ORDER.index(s) if s in _ORDER else 99)
            if counts[s]]


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class HtmlReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context

    def render(self, report: RunReport) -> str:
        from ..render.graph_svg import nodes_from_report, render_svg  # lazy: only runs asking for HTML
        from ..render.html_page import document, graph_section

        anchors = {r.id: f"check-{n}" for n, r in enumerate(report.results)}
        layers = _layers(report, anchors)
        parts = [_summary(report), _toc(report), _problems(report), _causes(report, anchors), *layers]
        if report.results:
            nodes, requires = nodes_from_report(report)
            svg = render_svg(nodes, requires, links={cid: "#" + a for cid, a in anchors.items()})
            parts.append(graph_section(svg))
        parts.append(f"<footer>mgn-verify {_e(report.tool_version)} · run {_e(report.run_id)} · a self-contained "
                     "report: no scripts, nothing loaded from the network.</footer>")
        return document(f"mgn verify: {verdict(report)}", "\n".join(p for p in parts if p))


def _e(text: object) -> str:
    from ..render.graph_svg import escape

    return escape(str(text))


def _badge(status: str, text: str | None = None) -> str:
    from ..render.html_page import badge

    return badge(status, text)


def _summary(report: RunReport) -> str:
    word, banner = _VERDICTS.get(int(report.exit_code), ("DONE", "v-warn"))
    counts = "".join(f"<li>{_badge(s, f'{s} {n}')}</li>" for s, n in _counts(report))
    meta = [("checks", str(len(report.results))), ("duration", _duration(report.duration_s)),
            ("exit code", f"{int(report.exit_code)}: {report.exit_code.meaning}"),
            ("started", report.started_at.isoformat(timespec="seconds")), ("host", report.hostname),
            ("command", shlex.join(["mgn", *report.argv[1:]]))]
    if report.selection:
        meta.append(("selection", " ".join(report.selection)))
    if report.config_file:
        meta.append(("config", report.config_file))
    if report.gate is not None:
        meta.append(("gate", f"{report.gate.get('name', '')}: {report.gate.get('decision', '')}"))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{'<code>' + _e(v) + '</code>' if k == 'command' else _e(v)}</dd>"
                   for k, v in meta)
    return (f'<header class="verdict {banner}"><h1>mgn verify: {_e(word)}</h1>'
            f"<p>{_e(verdict(report))}</p></header>\n"
            f'<section id="summary"><ul class="counts">{counts}</ul><dl class="meta">{rows}</dl></section>')


def _layer_names(report: RunReport) -> list[str]:
    return sorted({r.layer for r in report.results}, key=layer_sort_key)


def _toc(report: RunReport) -> str:
    """Links to every section: the graph comes last, one click away."""
    if not report.results:
        return ""
    links = ['<a href="#root-causes">root causes</a>']
    links += [f'<a href="#layer-{n}">{_e(layer)}</a>' for n, layer in enumerate(_layer_names(report))]
    links.append('<a href="#graph">dependency graph</a>')
    return f'<nav class="toc">Jump to: {"".join(links)}</nav>'


def _problems(report: RunReport) -> str:
    out = []
    for heading, items in (("Errors", report.errors), ("Warnings", report.warnings)):
        if items:
            lis = "".join(f"<li>{_e(item)}</li>" for item in items)
            out.append(f'<section class="problems"><h2>{heading}</h2><ul>{lis}</ul></section>')
    return "\n".join(out)


def _link(cid: str, anchors: dict[str, str]) -> str:
    target = anchors.get(cid)
    code = f'<code class="id">{_e(cid)}</code>'
    return f'<a href="#{target}">{code}</a>' if target else code


def _causes(report: RunReport, anchors: dict[str, str]) -> str:
    causes = report.root_causes()
    if not causes:
        return ('<section id="root-causes"><h2>Root causes</h2><p>None: nothing failed, errored or blocked '
                "another check.</p></section>") if report.results else ""
    items = []
    for result, blocked in causes:
        text = [f"<li>{_link(result.id, anchors)} {_badge(str(result.status))}"]
        if result.message:
            text.append(f'<div class="msg">{_e(result.message)}</div>')
        if result.remediation:
            text.append(f'<div class="fix">fix: {_e(result.remediation)}</div>')
        if blocked:
            links = ", ".join(_link(cid, anchors) for cid in blocked)
            text.append(f'<div class="blocks">blocks {len(blocked)}: {links}</div>')
        items.append("".join(text) + "</li>")
    return (f'<section id="root-causes"><h2>Root causes <small>fix these first</small></h2>'
            f'<ol class="causes">{"".join(items)}</ol></section>')


def _layers(report: RunReport, anchors: dict[str, str]) -> list[str]:
    layers: dict[str, list[Result]] = {}
    for result in report.results:
        layers.setdefault(result.layer, []).append(result)
    sections = []
    for n, layer in enumerate(_layer_names(report)):
        results = layers[layer]
        tally: dict[str, int] = {}
        for r in results:
            tally[str(r.status)] = tally.get(str(r.status), 0) + 1
        summary = " · ".join([f"{len(results)} check{'' if len(results) == 1 else 's'}"]
                             + [f"{c} {s}" for s, c in tally.items()])
        rows = "\n".join(_row(r, anchors[r.id]) for r in results)
        sections.append(
            f'<section class="layer" id="layer-{n}"><h2>{_e(layer)}<small>{_e(summary)}</small></h2>'
            '<table><colgroup><col class="c-status"><col class="c-check"><col class="c-msg"><col class="c-fix">'
            '<col class="c-dur"></colgroup><thead><tr><th>status</th><th>check</th><th>message</th>'
            f"<th>remediation</th><th>duration</th></tr></thead><tbody>\n{rows}\n</tbody></table></section>")
    return sections


def _row(result: Result, anchor: str) -> str:
    status = str(result.status)
    title = f'<div class="title">{_e(result.title)}</div>' if result.title and result.title != result.id else ""
    message = [f'<div class="msg">{_e(result.message)}</div>'] if result.message else []
    if result.waiver is not None:
        waiver = result.waiver
        message.append(f'<div class="fix">waived by {_e(waiver.pattern)} ({_e(waiver.source)})'
                       f"{': ' + _e(waiver.reason) if waiver.reason else ''}</div>")
    if result.output:
        lines = result.output.rstrip("\n").count("\n") + 1
        message.append(f"<details><summary>output ({lines} line{'' if lines == 1 else 's'})</summary>"
                       f"<pre>{_e(result.output)}</pre></details>")
    fix = _e(result.remediation) if result.status is not Status.PASS else ""
    duration = _duration(result.duration_s) if result.attempts else ""
    return (f'<tr id="{anchor}" class="row-{_e(status)}" data-id="{_e(result.id)}"><td>{_badge(status)}</td>'
            f'<td><code class="id">{_e(result.id)}</code>{title}</td><td>{"".join(message)}</td>'
            f'<td class="fix">{fix}</td><td class="dur">{duration}</td></tr>')


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("html", HtmlReporter, help="one self-contained offline HTML page with the dependency graph")

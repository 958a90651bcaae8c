"""The shell of the offline HTML pages (the run report, ``mgn verify graph --format html``):
one document, its CSS inline, no scripts, no fonts, nothing fetched from anywhere."""

from __future__ import annotations

from .graph_svg import GLYPHS, PALETTE, escape

__all__ = ["CATALOGUE_HINT", "CSP", "GRAPH_HINT", "badge", "document", "graph_section"]

#: The page may load nothing at all (its CSS is inline): a browser blocks, and reports on its
#: console, any fetch a future change might add, so "offline" is enforced, not just intended.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

GRAPH_HINT = ("An arrow points at what a check requires; checks that require nothing are on the left. "
              "A thick red outline marks a root cause, red arrows the checks it blocks. "
              "Hover a check for its message, click it for its row.")
CATALOGUE_HINT = ("An arrow points at what a check requires; checks that require nothing are on the left. "
                  "Nothing ran: every check is drawn as not run.")

_CSS = """
:root { color-scheme: light; --ink: #1d2327; --muted: #5f6b73; --line: #d9dee2; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans",
       sans-serif; color: var(--ink); background: #fafbfc; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h2 small { font-size: 13px; font-weight: normal; color: var(--muted); margin-left: 8px; }
code, .id, pre, .msg { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.verdict { padding: 14px 20px; border-radius: 8px; border-left: 8px solid; margin-bottom: 16px; }
.verdict p { margin: 0; }
.v-ok { background: #e3f4e4; border-color: #2e7d32; }
.v-warn { background: #fff3c4; border-color: #b07d00; }
.v-bad { background: #fdd8d8; border-color: #c62828; }
.counts { list-style: none; padding: 0; margin: 0 0 12px; display: flex; flex-wrap: wrap; gap: 8px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; border: 1px solid; white-space: nowrap;
         font-size: 12.5px; }
.counts .badge { font-size: 14px; padding: 3px 12px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.problems li { color: #8e1b1b; white-space: pre-wrap; }
ol.causes { padding-left: 22px; }
ol.causes li { margin-bottom: 12px; }
.msg { white-space: pre-wrap; overflow-wrap: anywhere; margin: 2px 0; }
.fix { color: #0d47a1; white-space: pre-wrap; overflow-wrap: anywhere; }
.blocks { color: var(--muted); overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; background: #fff; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
col.c-status { width: 105px; } col.c-check { width: 30%; } col.c-fix { width: 25%; } col.c-dur { width: 80px; }
td .id { overflow-wrap: anywhere; font-weight: 600; }
td .title { color: var(--muted); font-size: 12.5px; }
td.dur { text-align: right; white-space: nowrap; color: var(--muted); }
tr:target { outline: 2px solid #1565c0; }
details pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f5f7; padding: 6px; margin: 4px 0; }
.graph-box { overflow: auto; border: 1px solid var(--line); background: #fff; border-radius: 6px; }
#fit:checked ~ .graph-box svg { width: 100%; height: auto; }
nav.toc { margin: 16px 0 0; font-size: 13px; color: var(--muted); }
nav.toc a { margin-right: 10px; }
.hint, footer { color: var(--muted); font-size: 12.5px; }
footer { margin-top: 32px; }
a { color: #0d47a1; }
svg a { text-decoration: none; }
"""


def _status_css() -> str:
    return "\n".join(f".status-{status} {{ background: {fill}; border-color: {stroke}; }}"
                     for status, (fill, stroke) in PALETTE.items())


def document(title: str, body: str) -> str:
    """A whole page: ``title`` is escaped here, ``body`` must already be safe HTML."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>{_CSS}{_status_css()}\n</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def badge(status: str, text: str | None = None) -> str:
    """A coloured status pill: glyph and status (or ``text``)."""
    shown = text if text is not None else f"{GLYPHS.get(status, '?')} {status}"
    return f'<span class="badge status-{escape(status)}">{escape(shown)}</span>'


def graph_section(svg: str, hint: str = GRAPH_HINT) -> str:
    """The graph with its hint and a script-free "fit to width" switch (a checkbox and CSS)."""
    return (f'<section id="graph">\n<h2>Dependency graph</h2>\n<p class="hint">{escape(hint)}</p>\n'
            '<input type="checkbox" id="fit"> <label for="fit">fit to width</label>\n'
            f'<div class="graph-box">\n{svg}</div>\n</section>')

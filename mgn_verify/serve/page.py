"""``/``: a small status page. Self-contained (no script, no external style or font: the
server's Content-Security-Policy allows nothing else), every text escaped, refreshed by a meta
tag. It shows only what the (redacted) report holds."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from html import escape

from .._model import Status
from .state import NO_RUN_YET, ServeState

__all__ = ["render_page"]

_COLOURS = {Status.PASS: "#1a7f37", Status.WARN: "#9a6700", Status.FAIL: "#cf222e", Status.ERROR: "#a40e26",
            Status.SKIP: "#6e7781", Status.BLOCKED: "#8250df", Status.WAIVED: "#0969da"}
_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}
h1{font-size:1.3em}.verdict{padding:.6em 1em;border-radius:6px;color:#fff;font-weight:600}
.ok{background:#1a7f37}.bad{background:#cf222e}.none{background:#6e7781}
table{border-collapse:collapse;margin-top:1em}td,th{padding:.25em .8em;text-align:left;vertical-align:top}
tr:nth-child(even){background:#f6f8fa}.st{font-weight:600}.meta{color:#57606a}"""
_MESSAGE_CHARS = 300


def render_page(state: ServeState) -> str:
    snapshot, running_since = state.view()
    refresh = max(1, min(15, math.ceil(state.interval)))
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{refresh}"><title>mgn verify serve</title>'
            f"<style>{_STYLE}</style></head><body><h1>mgn verify serve</h1>")
    running = (f'<p class="meta">a run is in progress (since {_when(running_since)})</p>'
               if running_since is not None else "")
    if snapshot is None:
        return f'{head}<p class="verdict none">{escape(NO_RUN_YET)}</p>{running}</body></html>'
    report = snapshot.report
    cls = "ok" if snapshot.healthy else "bad"
    meta = (f'<p class="meta">run {snapshot.runs} finished {_when(snapshot.finished_at)} in '
            f"{report.duration_s:.2f} s on {escape(report.hostname)}; next every {state.interval:g} s. "
            'Also: <a href="/report">/report</a> (JSON), <a href="/metrics">/metrics</a>, '
            '<a href="/healthz">/healthz</a></p>')
    errors = "".join(f'<p class="st" style="color:#cf222e">error: {escape(e)}</p>' for e in report.errors)
    rows = "".join(
        f'<tr><td class="st" style="color:{_COLOURS[r.status]}">{escape(str(r.status))}</td>'
        f"<td>{escape(r.id)}</td><td>{escape(r.layer)}</td><td>{escape(_short(r.message))}</td></tr>"
        for r in report.results)
    table = (f"<table><thead><tr><th>status</th><th>check</th><th>layer</th><th>message</th></tr></thead>"
             f"<tbody>{rows}</tbody></table>")
    return (f'{head}<p class="verdict {cls}">{escape(snapshot.verdict)}</p>{meta}{running}{errors}{table}'
            "</body></html>")


def _when(unix: float) -> str:
    ago = max(0.0, time.time() - unix)
    stamp = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({ago:.0f} s ago)"


def _short(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= _MESSAGE_CHARS else line[:_MESSAGE_CHARS - 1] + "…"

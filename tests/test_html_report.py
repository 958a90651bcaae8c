"""The HTML report (``--html``, ``-o html``) and the graph picture (``mgn verify graph --format
svg|html``): rendered in a real headless Chromium (one run for the module), parsed, counted."""

from __future__ import annotations

import importlib.util
import json
import random
import struct
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from mgn_verify.render.graph_svg import render_svg
from mgn_verify.render.layout import GraphNode, count_crossings, layout
from tests.helpers import ISOLATED, REPO

TOKEN = "tok-9f8e7d6c5b4a"
SVG = "{http://www.w3.org/2000/svg}"

CHECKS = '''
import os
from mgn_verify import check, skip, warn, parametrize
@check(id="h.ok")
def check_ok(): pass
@check(id="h.fail", remediation="restart <b>it</b> & retry")
def check_fail():
    assert False, "line one\\nline two <img src='https://evil.example/x.png'> " + os.environ["MGN_API_TOKEN"]
@check(id="h.after", requires=["h.fail"])
def check_after(): pass
@check(id="h.later", requires=["h.after"])
def check_later(): pass
@check(id="h.warn", severity="warning")
def check_warn(): warn("a bit low")
@check(id="h.skip")
def check_skip(): skip("not here")
@parametrize("tok", [os.environ["MGN_API_TOKEN"]])
@check(id="h.login", requires=["h.ok"])
def check_login(tok): pass
'''


class Dom(HTMLParser):
    """Every element as (tag, attributes) and the text, from what Chromium rendered."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and cls in a.get("class", "").split()]


def _script() -> ModuleType:
    """scripts/screenshot_html.py, the README screenshot's code path, imported by file."""
    spec = importlib.util.spec_from_file_location("screenshot_html", REPO / "scripts" / "screenshot_html.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_a_lab_run_with_a_fault_renders_in_chromium(tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "check_h.py").write_text(CHECKS)
    html, report_json, png = tmp_path / "report.html", tmp_path / "report.json", tmp_path / "shot.png"
    script = _script()
    script.lab_report(html, ["--checks-dir", str(checks), "--json", str(report_json)],
                      env={"MGN_API_TOKEN": TOKEN, "HOME": str(tmp_path / "home")})
    shot = script.capture(html, png, height=1400)

    assert shot.console == []  # the page's CSP would log any fetch; no script error either
    assert _png_size(png.read_bytes()) == (1280, 1400) and png.stat().st_size > 30_000
    report = json.loads(report_json.read_text())
    ids = [r["id"] for r in report["results"]]
    status = {r["id"]: r["status"] for r in report["results"]}
    assert {"pass", "fail", "blocked", "warn", "skip"} <= set(status.values())
    assert any(cid.startswith("system.") for cid in ids) and "h.login[***]" in ids

    dom = Dom(shot.dom)
    assert sorted(a["data-id"] for t, a in dom.elements if t == "tr" and "data-id" in a) == sorted(ids)
    nodes = dom.with_class("g", "node")
    assert sorted(a["data-id"] for a in nodes) == sorted(ids)  # one node per check
    assert {a["data-id"]: a["data-status"] for a in nodes} == status
    assert "root-cause" in next(a for a in nodes if a["data-id"] == "h.fail")["class"]
    blocking = {(a["data-from"], a["data-to"]) for a in dom.with_class("path", "blocking")}
    assert {("h.after", "h.fail"), ("h.later", "h.after"), ("kubernetes.api.livez[lab]",
                                                           "kubernetes.api.reachable[lab]")} <= blocking
    # offline: no script, nothing loaded, links only within the page
    tags = {t for t, _ in dom.elements}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "image", "use"}
    for _, attrs in dom.elements:
        for name in ("src", "href", "xlink:href", "action"):
            assert not attrs.get(name, "#").lower().startswith(("http:", "https:", "//")), attrs
            assert attrs.get(name, "#").startswith("#"), attrs
    text = "".join(dom.text)
    assert "line one\nline two <img src='https://evil.example/x.png'> ***" in text  # escaped, lines kept
    assert "restart <b>it</b> & retry" in text
    assert "mgn verify: FAILED" in text and "Root causes" in text
    assert len([a for t, a in dom.elements if t == "section" and a.get("class") == "layer"]) == 7  # + "h"
    assert TOKEN not in html.read_text() + shot.dom


def test_graph_svg_and_html_of_the_catalogue(mgn) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(mgn("verify", "list", "all", "--json").stdout)
    run = mgn("verify", "graph", "all", "--format", "svg")
    assert run.exit_code == 0, run.stderr
    root = ET.fromstring(run.stdout)  # well-formed XML, namespaced as a standalone SVG
    nodes = [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "").split()]
    assert sorted(g.get("data-id", "") for g in nodes) == sorted(r["id"] for r in listed)
    assert {g.get("data-status") for g in nodes} == {"not-run"}
    assert len(listed) >= 90

    page = mgn("verify", "graph", "all", "--format", "html")
    dom = Dom(page.stdout)
    csp = next(a for t, a in dom.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp["content"].startswith("default-src 'none'")
    assert len(dom.with_class("g", "node")) == len(listed)

    # The layout of the real catalogue: wrapped ranks stay short, sweeps remove crossings.
    requires = {r["id"]: tuple(r["requires"]) for r in listed}
    graph_nodes = [GraphNode(r["id"], r["layer"], "not-run") for r in listed]
    placed = layout(graph_nodes, requires)
    assert placed.rows <= 25 and placed.columns > 1
    assert placed.crossings <= layout(graph_nodes, requires, sweeps=0).crossings
    scrambled = random.Random(7).sample(graph_nodes, len(graph_nodes))  # within a layer: report order
    assert layout(scrambled, requires).crossings < layout(scrambled, requires, sweeps=0).crossings
    heights = {cid: p.y for cid, p in placed.placed.items()}
    assert count_crossings(heights, {c: p.rank for c, p in placed.placed.items()}, placed.requires) == placed.crossings


def test_nasty_ids_and_texts_are_escaped_in_the_svg() -> None:
    nodes = [GraphNode('a"<x>&\x01', "zz", "fail", "t<'>", "m\n<script>", root=True),
             GraphNode("b", "zz", "blocked"), GraphNode("c", "zz", "weird")]
    svg = render_svg(nodes, {"b": ('a"<x>&\x01',), "c": ("b", "missing")}, standalone=True)
    root = ET.fromstring(svg)
    ids = [g.get("data-id") for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")]
    assert ids == ['a"<x>&\ufffd', "b", "c"]
    assert "<script>" not in svg and len([p for p in root.iter(f"{SVG}path") if "blocking" in p.get("class", "")]) == 1


def test_html_on_stdout_and_an_empty_run(mgn, checks_dir) -> None:  # type: ignore[no-untyped-def]
    directory = checks_dir(check_x="from mgn_verify import check\n@check(id='x.ok')\ndef check_ok(): pass\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "html")
    assert run.exit_code == 0
    assert run.stdout.startswith("<!DOCTYPE html>") and "mgn verify: PASSED" in run.stdout
    assert 'data-id="x.ok"' in run.stdout and "<script" not in run.stdout
    none = mgn("verify", "nosuchlayer", "--checks-dir", str(directory), *ISOLATED, "-o", "html")
    assert none.exit_code == 2 and none.stdout.startswith("<!DOCTYPE html>")


def test_the_readme_screenshot_is_there_and_small() -> None:
    png = REPO / "docs" / "images" / "html-report.png"
    width, _ = _png_size(png.read_bytes())
    assert width == 1280 and png.stat().st_size < 300 * 1024


@pytest.mark.parametrize("fmt", ["svg", "html"])
def test_graph_pictures_show_redacted_ids_only(mgn, checks_dir, fmt: str) -> None:  # type: ignore[no-untyped-def]
    directory = checks_dir(check_h=CHECKS)
    run = mgn("verify", "graph", "h", "--format", fmt, "--checks-dir", str(directory), *ISOLATED,
              env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 0, run.stderr
    assert TOKEN not in run.stdout and 'data-id="h.login[***]"' in run.stdout
    assert run.stdout.count('class="node status-not-run"') == 7

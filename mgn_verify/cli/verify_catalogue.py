"""``mgn verify list|explain|graph``: the check catalogue, without running anything.

Loaded by the ``verify`` group only when one of these subcommands is named (``mgn verify
system`` never imports it).
"""

from __future__ import annotations

import json
from typing import Any

import click

from .._exceptions import UsageError
from .._session import LoadedSession, Selection
from ._options import loading_options, open_session, parse_overrides, run_or_exit

__all__ = ["explain", "graph", "list_"]


@click.command("list")
@click.argument("layers", nargs=-1, metavar="[all|LAYER...]")
@loading_options
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON (same as --format json).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default=None,
              help="table (default), json, or markdown (the page docs/catalogue.md is generated from).")
def list_(layers: tuple[str, ...], plugins: tuple[str, ...], checks_dir: tuple[str, ...],
          config_path: str | None, overrides: tuple[str, ...], as_json: bool, fmt: str | None) -> None:
    """List the checks: id, layer, severity, requires, title."""
    def body() -> int:
        if as_json and fmt not in (None, "json"):
            raise UsageError(f"--json and --format {fmt} conflict: give one of them")
        chosen = "json" if as_json else (fmt or "table")
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides), layers)
        ids, _ = session.select(Selection(list(layers)))
        # A parametrized id built from a secret is shown as in every report: redacted.
        rows = [session.config.redactor.data(_describe(session, cid)) for cid in ids]
        if chosen == "json":
            click.echo(json.dumps(rows, indent=2))
            return 0
        if chosen == "markdown":
            from ._markdown import catalogue_markdown

            specs, red = session.graph.specs, session.config.redactor.text  # keyed as the (redacted) rows are
            page = catalogue_markdown(rows, {red(cid): red(specs[cid].base_id or cid) for cid in specs},
                                      {red(cid): dict(specs[cid].params) for cid in ids})
            click.echo(session.config.redactor.text(page))  # parameter values as in every report
            return 0
        width = max(len(r["id"]) for r in rows)
        for r in rows:
            needs = f"  (requires {', '.join(r['requires'])})" if r["requires"] else ""
            click.echo(f"{r['id'].ljust(width)}  {r['layer']:<10} {r['severity']:<8}  {r['title']}{needs}")
        click.echo(f"\n{len(rows)} check{'' if len(rows) == 1 else 's'}")
        return 0

    run_or_exit(body)


def _describe(session: LoadedSession, cid: str) -> dict[str, Any]:
    from .._settings_used import settings_read

    spec = session.graph.specs[cid]
    settings = settings_read(spec.func, spec.argnames, session.plugins.registry.fixtures,
                             session.config.registry)
    return {"id": spec.id, "layer": spec.layer, "severity": str(spec.severity), "title": spec.title,
            "requires": list(session.graph.requires[cid]), "tags": list(spec.tags),
            "timeout": spec.timeout, "retries": spec.retries, "remediation": spec.remediation,
            "plugin": spec.plugin, "source": spec.source, "settings": settings,
            "gates": [name for name, _ in session.gate_book().gates_of(cid)], "waivable": spec.waivable}


@click.command("explain")
@click.argument("check_id", metavar="ID")
@loading_options
def explain(check_id: str, plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
            overrides: tuple[str, ...]) -> None:
    """Explain one check: what it checks and why, how to fix it, its dependencies and dependents."""
    def body() -> int:
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides))
        graph = session.graph

        def say(text: str) -> None:  # ids, titles and settings shown as in every report: redacted
            click.echo(session.config.redactor.text(text))

        # A parametrized check can be named by its base id: explain it once, list its instances.
        instances = [cid for cid in graph.order if graph.specs[cid].base_id == check_id]
        chosen = check_id if check_id in graph.specs else (instances[0] if instances else None)
        if chosen is None:
            raise UsageError(f"unknown check {check_id!r}{session.plugins.registry.suggest(check_id)}")
        info = _describe(session, chosen)
        spec = graph.specs[chosen]
        dependents = graph.dependents()[chosen]
        untitled = spec.title in (spec.id, spec.base_id)  # no title: it defaults to the id
        say(spec.id if untitled else f"{spec.id}: {spec.title}")
        if check_id not in graph.specs:
            say(f"  one of {len(instances)} instances of {check_id}: {', '.join(instances)}")
        say(f"  layer {spec.layer} · severity {spec.severity} · timeout "
                   f"{spec.timeout or 'default'} · retries {spec.retries} · plugin {spec.plugin}")
        if spec.tags:
            say(f"  tags: {', '.join(spec.tags)}")
        from .._gates import explain_gates

        for line in explain_gates(session.gate_book(), spec):
            say(line)
        if spec.description and spec.description != spec.title:
            say("\n" + "\n".join("  " + line for line in spec.description.splitlines()))
        say(f"\n  remediation: {spec.remediation or '(none given)'}")
        say(f"  requires:    {', '.join(info['requires']) or '(nothing)'}")
        say(f"  required by: {', '.join(dependents) or '(nothing)'}")
        config = session.config
        if info["settings"]:
            say("  settings:")
            for key in info["settings"]:
                shown = config.redactor.data(config[key])
                say(f"    {key} = {json.dumps(shown, default=str)}  ({config.source(key)})")
        say(f"  defined at:  {spec.source}")
        return 0

    run_or_exit(body)


@click.command("graph")
@click.argument("layers", nargs=-1, metavar="[all|LAYER...]")
@loading_options
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "svg", "html"]), default="dot",
              show_default=True, help="dot, mermaid, svg (a picture) or html (an offline page with the picture).")
def graph(layers: tuple[str, ...], plugins: tuple[str, ...], checks_dir: tuple[str, ...],
          config_path: str | None, overrides: tuple[str, ...], fmt: str) -> None:
    """Print the dependency graph as Graphviz DOT, Mermaid, SVG or HTML (an edge points at what is
    required). Nothing runs: in svg/html every check is drawn as "not run"."""
    def body() -> int:
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides), layers)
        ids, _ = session.select(Selection(list(layers)))
        requires = session.graph.requires
        if fmt in ("svg", "html"):
            click.echo(_picture(session, ids, fmt), nl=False)
            return 0
        if fmt == "dot":
            lines = ["digraph mgn_verify {", "  rankdir=LR;"]
            lines += [f'  "{cid}";' for cid in ids]
            lines += [f'  "{cid}" -> "{dep}";' for cid in ids for dep in requires[cid]]
            lines.append("}")
        else:
            node = {cid: f"n{i}" for i, cid in enumerate(ids)}
            lines = ["graph LR"] + [f'  {node[c]}["{c}"]' for c in ids]
            lines += [f"  {node[c]} --> {node[d]}" for c in ids for d in requires[c] if d in node]
        click.echo(session.config.redactor.text("\n".join(lines)))  # ids as in every report
        return 0

    run_or_exit(body)


def _picture(session: LoadedSession, ids: list[str], fmt: str) -> str:
    """The selected checks drawn by the HTML report's renderer, all "not run"; ids and titles
    redacted first (then escaped), as in every report."""
    from ..render.graph_svg import render_svg
    from ..render.html_page import CATALOGUE_HINT, document, graph_section
    from ..render.layout import GraphNode

    red, specs, chosen = session.config.redactor.text, session.graph.specs, set(ids)
    nodes = [GraphNode(red(cid), specs[cid].layer, "not-run", red(specs[cid].title)) for cid in ids]
    requires = {red(cid): tuple(red(d) for d in session.graph.requires[cid] if d in chosen) for cid in ids}
    svg = render_svg(nodes, requires, standalone=fmt == "svg")
    if fmt == "svg":
        return svg
    count = f"{len(ids)} check{'' if len(ids) == 1 else 's'}"
    return document(f"mgn verify graph: {count}",
                    f'<header class="verdict v-ok"><h1>mgn verify graph</h1><p>{count}, not run</p></header>\n'
                    + graph_section(svg, CATALOGUE_HINT))

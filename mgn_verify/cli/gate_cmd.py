"""``mgn gate``: the preflight gates, their checks, and where each check's membership came from.

::

    mgn gate list                          # every gate, how many checks, built-in or defined where
    mgn gate show workspace.create --cluster lab -o yaml
"""

from __future__ import annotations

from typing import Any

import click

from ..lifecycle.output import echo_data
from ._lifecycle import config_options, context_from, output_option, run_lifecycle

__all__ = ["gate"]

#: ``mgn gate list/show`` only read: no gate runs, nothing is refused.
EPILOG = ("\b\nExit codes:\n    0  done\n    2  usage, configuration or plugin error\n"
          "  130  interrupted (Ctrl-C or SIGTERM)")


@click.group()
def gate() -> None:
    """Show the preflight gates and the checks each one runs.

    A gated command (mgn install, cluster, workspace, federation) runs its gate's checks, with
    their dependencies, before it acts. A check joins a gate through its metadata
    (@check(gates=[...])) or config (gates: {NAME: {add: [...], remove: [...]}})."""


@gate.command("list", epilog=EPILOG)
@config_options
@output_option()
def list_(config_path: str | None, overrides: tuple[str, ...], fmt: str) -> None:
    """Every gate: its checks (count), where it is defined, what it guards."""
    def body() -> int:
        ctx = context_from(config_path, overrides)
        loaded = ctx.load(["all"])
        book = loaded.gate_book()
        rows = []
        for name in book.names():
            found = book.gate(name)
            rows.append({"name": name, "count": len(found.members), "origin": found.origin,
                         "description": found.description, "checks": found.ids})
        if fmt != "table":
            echo_data([{k: v for k, v in row.items() if k != "count"} for row in rows], fmt,
                      redact=loaded.config.redactor.data)
            return 0
        echo_data(rows, fmt, columns=[("GATE", "name"), ("CHECKS", "count"), ("ORIGIN", "origin"),
                                      ("DESCRIPTION", "description")], redact=loaded.config.redactor.data)
        return 0

    run_lifecycle(body)


@gate.command("show", epilog=EPILOG)
@click.argument("name")
@click.option("--cluster", "clusters", multiple=True, metavar="ID",
              help="Only these clusters' checks, as the command targeting them runs them (repeatable).")
@config_options
@output_option()
def show(name: str, clusters: tuple[str, ...], config_path: str | None, overrides: tuple[str, ...],
         fmt: str) -> None:
    """A gate's checks, each with where its membership came from, and the checks they require
    (run first). Exactly what `mgn verify --gate NAME` runs."""
    def body() -> int:
        from .._gates import gate_layers
        from ._lifecycle import split_ids

        ctx = context_from(config_path, overrides)
        wanted = list(split_ids(clusters))
        extra = {"verify.clusters": (list(wanted), False)} if wanted else {}
        loaded = ctx.load(gate_layers(name), extra)
        found = loaded.gate_book().gate(name)
        data = {**found.to_dict(), "clusters": list(wanted), "dependencies": _dependencies(loaded, found.ids),
                "notes": _cluster_notes(loaded, name, wanted)}
        redact = loaded.config.redactor.data
        if fmt != "table":
            echo_data(data, fmt, redact=redact)
            return 0
        origin = " (built-in)" if found.origin == "built-in" else ""  # else the description names it
        click.echo(loaded.config.redactor.text(f"{name}: {found.description}{origin}"))
        rows = [{"id": c["id"], "via": c["via"]} for c in data["checks"]]
        rows += [{"id": d["id"], "via": f"required by {', '.join(d['required_by'])}"} for d in data["dependencies"]]
        rows += [{"id": r["id"], "via": f"removed by {r['via']}"} for r in data["removed"]]
        if rows:
            echo_data(rows, fmt, columns=[("CHECK", "id"), ("WHY", "via")], redact=redact)
        for note in data["notes"]:
            click.echo(f"note: {note}")
        return 0

    run_lifecycle(body)


def _dependencies(loaded: Any, ids: list[str]) -> list[dict[str, Any]]:
    """The checks the members require (transitively), which the gate runs first."""
    graph = loaded.graph
    members = set(ids)
    closure = graph.closure(members)
    required_by: dict[str, list[str]] = {}
    for cid in graph.order:
        if cid in closure:
            for dep in graph.requires[cid]:
                if dep in closure and dep not in members:
                    required_by.setdefault(dep, []).append(cid)
    return [{"id": cid, "required_by": required_by.get(cid, [])} for cid in graph.order
            if cid in closure and cid not in members]


def _cluster_notes(loaded: Any, name: str, clusters: list[str]) -> list[str]:
    """A cluster without a local kubeconfig has no kubernetes instances: say so (only then: config
    may also have removed them, and that the WHY column already shows)."""
    from ..lifecycle.preflight import local_gaps

    return [gap.message for gap in local_gaps(loaded, name, clusters)]

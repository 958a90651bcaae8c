"""``mgn config show``: the resolved configuration, where each value came from, secrets masked."""

from __future__ import annotations

import json

import click

from ._options import loading_options, open_session, parse_overrides, run_or_exit


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@loading_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show(plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
         overrides: tuple[str, ...], as_json: bool) -> None:
    """Print every setting with its value and its source (default, file, env, cli)."""
    def body() -> int:
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides))
        rows = session.config.redacted_items()
        if as_json:
            click.echo(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in rows], indent=2,
                                  default=str))
            return 0
        click.echo(f"# config file: {session.config.file or '(none)'}")
        width = max(len(k) for k, _, _ in rows)
        for key, value, source in rows:
            click.echo(f"{key.ljust(width)} = {json.dumps(value, default=str)}  # {source}")
        return 0

    run_or_exit(body)

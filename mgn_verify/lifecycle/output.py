"""Data a lifecycle command prints: a table for people, JSON or YAML for programs (``-o``).

Machine-readable output goes to stdout only with ``-o json|yaml``; JSON is one compact line
(``{"status":"Running"}``: the peer CLI's CI examples grep for exactly that), YAML is block
style. Tables are plain text with a header row; a missing value shows as ``-``. Every string
is passed through the config's redactor first, so no format can print a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

__all__ = ["FORMATS", "echo_data", "mask_secrets", "render"]

FORMATS = ("table", "json", "yaml")


def render(data: Any, fmt: str, *, columns: Sequence[tuple[str, str]] = (),
           redact: Callable[[Any], Any] | None = None) -> str:
    """``data`` (a mapping or a list of mappings) as ``fmt``. ``columns`` are
    ``(header, key)`` pairs for the table; without them a mapping is shown as key/value rows."""
    if redact is not None:
        data = redact(data)
    if fmt == "json":
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)).rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown output format {fmt!r}")
    rows = data if isinstance(data, list) else [data]
    if not columns:
        if not isinstance(data, Mapping):
            return "\n".join(str(row) for row in rows)
        return _table([(str(k), _cell(v)) for k, v in data.items()], header=None)
    body = [tuple(_cell(_pick(row, key)) for _, key in columns) for row in rows]
    return _table(body, header=tuple(h for h, _ in columns))


def echo_data(data: Any, fmt: str, *, columns: Sequence[tuple[str, str]] = (),
              redact: Callable[[Any], Any] | None = None) -> None:
    """Print :func:`render` to stdout."""
    click.echo(render(data, fmt, columns=columns, redact=redact))


def mask_secrets(value: Any) -> Any:
    """A request body as it may be shown: the value of a secret-looking key, of a
    ``{name: PASSWORD, value: …}`` env entry and of a ``kubeconfig`` (credentials) masked
    whole. What the redactor cannot know: these secrets were never configured."""
    from mgn_verify.config.redact import REDACTED, looks_secret

    if isinstance(value, Mapping):
        if set(value) == {"name", "value"} and looks_secret(str(value["name"])) and value["value"]:
            return {"name": value["name"], "value": REDACTED}
        return {k: REDACTED if v and (looks_secret(str(k)) or k == "kubeconfig") else mask_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


def _pick(row: Any, key: str) -> Any:
    value = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _cell(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value).replace("\n", " ")


def _table(rows: Sequence[tuple[str, ...]], *, header: tuple[str, ...] | None) -> str:
    lines = ([header] if header else []) + list(rows)
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    return "\n".join(out)

"""The files a lifecycle command reads (templates, federation files, kubeconfigs): every problem is
one ``UsageError`` line naming the option (or role) and the file, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgn_verify._exceptions import UsageError

__all__ = ["read_text", "read_yaml"]


def read_text(path: str | Path, what: str) -> str:
    """The file's text; ``what`` names it in errors (``--kubeconfig``, ``-f``, ``the federation file``)."""
    file = Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The file's YAML document (a malformed one names its first problem's line)."""
    import yaml

    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{what} {path}: not valid YAML{where} ({problem})") from None

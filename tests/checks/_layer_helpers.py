"""Helpers shared by the layer tests (``from tests.checks._layer_helpers import ...``)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- calling checks directly ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # pass, fail (an assertion), warn, skip
    message: str
    details: dict[str, object]


def run_check(func: Callable[..., object], **kwargs: object) -> Outcome:
    """Call a check function as the runner would and say what it decided."""
    from mgn_verify._outcomes import Skipped, Warned

    try:
        returned = func(**kwargs)
    except Skipped as exc:
        return Outcome("skip", exc.message, {})
    except Warned as exc:
        return Outcome("warn", exc.message, {})
    except AssertionError as exc:
        # pytest rewrites asserts in every module of this distribution (its pytest11 entry point
        # marks the whole package), appending "\nassert False ..." to messages: keep ours only.
        return Outcome("fail", str(exc).split("\nassert ", 1)[0], {})
    if isinstance(returned, dict):
        details = dict(returned)
        return Outcome("pass", str(details.pop("message", "")), details)
    return Outcome("pass", str(returned or ""), {})


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` ({"/proc/swaps": "...", "/var/lib/etcd/": ""}) below ``root``; a path
    ending in "/" is an (empty) directory."""
    for name, content in files.items():
        path = root / name.lstrip("/")
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root

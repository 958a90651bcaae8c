"""The audit log: one JSON line per preflight override, appended, never rewritten.

Every time a lifecycle command proceeds although its gate had failures (``--ignore-preflight-
errors``, ``--skip-verify``, a configured waiver), it appends one line to ``audit.path``
(default ``~/.metaguildnet/audit.jsonl``; the directory is created, the file is created with
mode 0600): when, who, where, the command line and what was waived, with the reason. Secrets
never reach it: argv and messages go through the config's redactor first. A record is always
one line, whatever argv holds: JSON escapes control characters, and ``audit_line`` escapes what
JSON may leave raw (C1 controls, U+2028/U+2029, undecodable bytes).

An override that cannot be recorded does not happen: ``append`` raises ``AuditError`` (exit 2)
and the command refuses.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import MgnVerifyError
from ._version import __version__
from .config.redact import scrub_argv

if TYPE_CHECKING:
    from .config import Redactor

__all__ = ["AuditError", "append", "audit_line", "audit_record"]


class AuditError(MgnVerifyError):
    """The audit log could not be written: the override is refused (exit 2)."""


def audit_record(*, command: str, argv: Sequence[str], gate: str, clusters: Sequence[str],
                 overrides: Sequence[Mapping[str, Any]], reason: str, decision: str,
                 redactor: Redactor, run_id: str = "") -> dict[str, Any]:
    """The line's data, redacted: argv is scrubbed of secret-looking values and every registered
    secret, the override messages and the reason too."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "user": _os_user(), "host": socket.gethostname(), "command": command,
        "argv": scrub_argv([str(a) for a in argv]), "gate": gate, "clusters": list(clusters),
        "overrides": [dict(o) for o in overrides], "reason": reason, "decision": decision,
        "run_id": run_id, "tool_version": __version__,
    }
    redacted: dict[str, Any] = redactor.data(record)
    return redacted


def append(path: str, record: Mapping[str, Any]) -> Path:
    """Append ``record`` as one JSON line to ``path`` (``~`` expanded); :class:`AuditError` when
    it cannot be written."""
    try:
        target = Path(path).expanduser()
    except RuntimeError:  # "~" without HOME nor a passwd entry (a container's arbitrary uid)
        raise AuditError(f"cannot write the audit log {path}: the home directory is unknown; the override is "
                         "refused (set audit.path to an absolute path)") from None
    line = audit_line(record)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)  # one write with O_APPEND: concurrent commands never interleave a line
            if written != len(line):  # a full disk: half a line is no record
                raise OSError(0, f"only {written} of {len(line)} bytes could be written")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise AuditError(f"cannot write the audit log {target}: {reason}; the override is refused "
                         "(set audit.path to a writable file)") from None
    return target


#: Characters JSON may leave raw but a reader must not see raw: C1 controls and DEL (terminal
#: escapes), U+2028/U+2029 and NEL (line breaks to ``str.splitlines``), lone surrogates
#: (undecodable bytes of argv, not encodable as UTF-8).
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def audit_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one line of UTF-8 JSON: readable (not ASCII-escaped), yet with every
    character that could break the line or reach a terminal as a ``\\uXXXX`` escape."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return (_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n").encode("utf-8")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return str(os.getuid()) if hasattr(os, "getuid") else "?"

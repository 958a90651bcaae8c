"""The typed data the framework passes around: statuses, severities, check specs, results.

These are plain frozen records. Running a check produces a ``Result``; reporters only ever see
``Result`` and ``RunReport`` objects, never the check functions themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LAYERS", "CheckSpec", "Result", "Severity", "Status", "Waiver", "layer_sort_key"]

#: The six built-in layers, in the order reports show them. Plugins may add more layers
#: simply by using another first id segment (or ``layer=``); those sort after these.
LAYERS: tuple[str, ...] = ("system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet")


def layer_sort_key(layer: str) -> tuple[int, str]:
    return (LAYERS.index(layer), "") if layer in LAYERS else (len(LAYERS), layer)


class Status(enum.StrEnum):
    """The outcome of one check; these exact strings appear in every report."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    BLOCKED = "blocked"
    WAIVED = "waived"

    @property
    def blocks_dependents(self) -> bool:
        """A dependent of a check in this status cannot run (it becomes ``blocked``)."""
        return self in (Status.FAIL, Status.ERROR, Status.BLOCKED)


class Severity(enum.StrEnum):
    """How much a failed assertion matters: ``critical`` → fail, ``warning`` → warn,
    ``info`` → warn that never changes the exit code (not even under ``--strict``)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One runnable check: a function plus the data its marks declared.

    A parametrized function yields one spec per value; ``base_id`` is the id without the
    ``[param]`` suffix, so ``requires=["system.ports.free"]`` matches every instance.
    """

    id: str
    title: str
    layer: str
    func: Callable[..., Any]
    base_id: str = ""
    requires: tuple[str, ...] = ()
    severity: Severity = Severity.CRITICAL
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.5
    tags: tuple[str, ...] = ()
    remediation: str = ""
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None
    argnames: tuple[str, ...] = ()
    is_async: bool = False
    plugin: str = ""
    source: str = ""
    #: The preflight gates this check belongs to by its own metadata (``@check(gates=[...])``);
    #: config may add or remove members (``_gates``).
    gates: tuple[str, ...] = ()
    #: ``False``: a failure is never turned into ``waived`` (an override could only lead to a
    #: failed operation), whatever ``--ignore-preflight-errors`` or ``verify.waivers`` say.
    waivable: bool = True


@dataclass(frozen=True, slots=True)
class Waiver:
    """Permission to proceed although a check fails; from config or ``--ignore-preflight-errors``."""

    pattern: str
    reason: str = ""
    expires: str | None = None
    source: str = "config"
    expired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "reason": self.reason, "expires": self.expires,
                "source": self.source, "expired": self.expired}


@dataclass(slots=True)
class Result:
    """What one check (or one parametrized instance) concluded."""

    id: str
    title: str
    layer: str
    status: Status
    severity: Severity
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    duration_s: float = 0.0
    attempts: int = 0
    requires: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    target: str | None = None
    waiver: Waiver | None = None
    #: What the check wrote to stdout/stderr (last attempt; redacted, bounded; "" when silent).
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "layer": self.layer, "status": str(self.status),
            "severity": str(self.severity), "message": self.message, "details": self.details,
            "remediation": self.remediation, "duration_s": round(self.duration_s, 6),
            "attempts": self.attempts, "requires": list(self.requires),
            "blocked_by": list(self.blocked_by), "tags": list(self.tags), "target": self.target,
            "waiver": self.waiver.to_dict() if self.waiver else None, "output": self.output,
        }

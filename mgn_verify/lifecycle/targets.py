"""Which cluster a command's CLUSTER argument names, for the Host App and for the preflight gate.

People name a cluster (``mgn workspace create prod …``); the Host App keys it by a UUID (each
bootstrap makes one) and keeps the name beside it; the config names it in ``clusters`` or
``defaults.cluster``. A CLUSTER argument is the Host App record with that id, else the only record
with that name; the gate runs for the configured cluster of that id or name, so its ``kubernetes``
checks use the configured kubeconfig and its ``guildnet`` checks the same record.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ClientError, MgnVerifyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mgn_verify.clients.hostapp import ClusterRecord, HostAppClient

    from .context import CommandContext

__all__ = ["NotRegistered", "Target", "listed", "not_registered", "resolve_target"]


class NotRegistered(MgnVerifyError):
    """The Host App answered and holds no cluster of that id or name: a negative outcome
    (exit 1), the same for every command (the gated ones say it through their gate)."""

    exit_code = 1


@dataclass(frozen=True)
class Target:
    """``ref``: what the user typed; ``host_id``: the Host App's id (for its routes);
    ``gate_id``: the cluster id the preflight gate's per-cluster checks run for; ``known``:
    True for a Host App record, False when the Host App answered without one, None when it
    could not be asked; ``listed``: what it lists then (ids, ``name (id)`` when they differ)."""

    ref: str
    host_id: str
    gate_id: str
    known: bool | None = None
    listed: tuple[str, ...] = ()

    def require(self) -> Target:
        """``self``, or :class:`NotRegistered` when the Host App said it has no such cluster
        (for the commands without a gate; when it could not be asked, the request says why)."""
        if self.known is False:
            raise not_registered(self.ref, self.listed)
        return self


def listed(records: Sequence[ClusterRecord]) -> tuple[str, ...]:
    """How the error shows the Host App's clusters: the id, ``name (id)`` when they differ."""
    return tuple(r.id if r.name in ("", r.id) else f"{r.name} ({r.id})" for r in records)


def not_registered(ref: str, clusters: tuple[str, ...]) -> NotRegistered:
    shown = ", ".join(clusters[:8]) + (f" and {len(clusters) - 8} more" if len(clusters) > 8 else "")
    lists = f"it lists: {shown}" if clusters else "it lists none: mgn cluster bootstrap or apply registers one"
    return NotRegistered(f"cluster {ref!r} is not registered in the Host App ({lists})")


def resolve_target(ctx: CommandContext, ref: str, api: HostAppClient | None = None) -> Target:
    """``ref`` resolved through the Host App's cluster list (one GET). When the Host App cannot
    be asked, ``ref`` stands for itself: the gate then says why the Host App is not usable."""
    from .clusters import pick

    # The checks ship as mgn_verify.checks (a package-dir mapping mypy does not follow).
    clusters: Any = importlib.import_module("mgn_verify.checks._clusters")

    try:
        if api is None:
            with ctx.hostapp() as own:
                records = own.clusters()
        else:
            records = api.clusters()
    except ClientError:
        return Target(ref, ref, ref, None)
    record = pick(records, ref)
    if record is None:
        return Target(ref, ref, ref, False, listed(records))
    configured = set(clusters.configured_cluster_ids(ctx.config))
    gate_id = next((c for c in (ref, record.name, record.id) if c in configured), record.id)
    return Target(ref, record.id, gate_id, True)

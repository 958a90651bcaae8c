"""Small helpers shared by the layer modules."""

from __future__ import annotations

import glob
import platform

from mgn_verify import Config, skip, warn

__all__ = ["exact", "linux_only", "node_requirement"]


def linux_only() -> None:
    """Skip (never fail) where the check reads Linux-only interfaces."""
    if platform.system() != "Linux":
        skip(f"Linux only (this is {platform.system()})")


def node_requirement(config: Config, ok: bool, message: str) -> None:
    """A kubelet prerequisite: a failure on a node, only a warning on the operator host (which
    runs no kubelet), so a bare run on a laptop reports it honestly without a false ``fail``."""
    if ok:
        return
    role = config["system.role"]
    if role == "node":
        raise AssertionError(message)
    warn(f"{message} (required on Kubernetes nodes; this host has system.role={role})")


def exact(check_id: str) -> str:
    """A ``requires`` entry that matches ``check_id`` literally. The framework treats any entry
    containing ``[`` as a glob, so a parametrized id such as ``network.tcp.connect[h:1]`` must
    have its brackets escaped to match itself (see the report: framework issue)."""
    return glob.escape(check_id)

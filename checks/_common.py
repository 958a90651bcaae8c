"""Small helpers shared by the layer modules."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from mgn_verify import Config, check, skip, warn
from mgn_verify._marks import get_marks

__all__ = [
    "KUBEADM_PORTS",
    "existing",
    "linux_only",
    "module_checks",
    "node_requirement",
    "nothing_configured",
    "system_role",
]

#: The ports kubeadm's control plane and kubelet bind: only a node needs them (free, let in).
KUBEADM_PORTS = (6443, 10250, 10257, 10259, 2379, 2380)


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


def module_checks(*modules: ModuleType) -> tuple[Callable[..., Any], ...]:
    """The ``@check`` functions defined at the top level of ``modules``, in definition order: what a
    layer registers from its helper modules, so a new ``@check`` there needs no hand-kept list."""
    return tuple(
        obj
        for module in modules
        for obj in vars(module).values()
        if callable(obj) and getattr(obj, "__module__", None) == module.__name__ and get_marks(obj, "check")
    )


def system_role(config: Config) -> str:
    """``system.role``, which must be ``operator`` or ``node`` (anything else is a config error)."""
    value = str(config["system.role"])
    if value not in ("operator", "node"):
        raise ValueError(f"system.role must be 'operator' or 'node', not {value!r}")
    return value


def existing(path: Path) -> Path:
    """The path itself or its nearest existing parent (a dir not created yet still lands there)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def nothing_configured(
    check_id: str,
    title: str,
    key: str,
    *,
    remediation: str | None = None,
    requires: Iterable[str] | None = None,
) -> Callable[..., Any]:
    """The one check a per-item check registers when its list ``key`` is empty: it skips."""
    if remediation is None:
        remediation = f"list what to check in {key} (config file or --set)"

    @check(id=check_id, title=title, requires=requires, remediation=remediation)
    def check_nothing() -> None:
        skip(f"{key} is empty: nothing configured")

    return check_nothing

"""The kubeconfig the lab writes for a Kubernetes simulator (token auth, the lab CA)."""

from __future__ import annotations

import json

__all__ = ["kubeconfig_yaml"]


def kubeconfig_yaml(server: str, token: str, ca: tuple[str, str], *, context: str, user: str,
                    namespace: str | None = None) -> str:
    """``ca``: ("data", base64 PEM) or ("file", path)."""
    q = json.dumps  # JSON strings are valid YAML double-quoted scalars
    kind, value = ca
    ca_line = f"certificate-authority-data: {q(value)}" if kind == "data" else f"certificate-authority: {q(value)}"
    ns_line = f"\n    namespace: {q(namespace)}" if namespace else ""
    return (
        "apiVersion: v1\nkind: Config\npreferences: {}\n"
        f"clusters:\n- name: {q(context)}\n  cluster:\n    server: {q(server)}\n    {ca_line}\n"
        f"contexts:\n- name: {q(context)}\n  context:\n    cluster: {q(context)}\n"
        f"    user: {q(user)}{ns_line}\n"
        f"current-context: {q(context)}\n"
        f"users:\n- name: {q(user)}\n  user:\n    token: {q(token)}\n"
    )

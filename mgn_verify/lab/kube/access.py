"""``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` (protocols.md §2.4): the
review echoed back with ``status.allowed`` from the store's access rules, answered with 201."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["access_review"]


def access_review(state: KubeState, body: Any, *, forbidden: bool) -> Obj:
    """The answered review; ``forbidden``: the ``kubernetes.forbidden`` fault denies everything."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise KubeApiError(
            422,
            "Invalid",
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec: Required value',
        )
    spec = body["spec"]
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(ra, dict):
        verb, res, grp, ns = (str(ra.get(k) or "") for k in ("verb", "resource", "group", "namespace"))
    elif isinstance(nra, dict):
        verb, res, grp, ns = str(nra.get("verb") or ""), str(nra.get("path") or ""), "", ""
    else:
        raise KubeApiError(
            422,
            "Invalid",
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
            'spec.resourceAttributes: Invalid value: "null": exactly one of '
            "nonResourceAttributes or resourceAttributes must be specified",
        )
    allowed = not forbidden and state.review_access(verb, res, grp, ns)
    status: Obj = {"allowed": allowed}
    if allowed:
        status["reason"] = (
            f'RBAC: allowed by ClusterRoleBinding "lab-admin" of ClusterRole "cluster-admin" '
            f'to User "{state.user}"'
        )
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

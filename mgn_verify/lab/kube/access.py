"""Authorization in the Kubernetes simulator: the RBAC verdict on a request (a 403 Status worded
as kube-apiserver words it) and ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``
(protocols.md §2.4), the review echoed back with ``status.allowed`` from the store's access
rules, answered with 201."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["access_review", "authorize", "forbidden_path"]


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


def forbidden_path(user: str, method: str, path: str) -> KubeApiError:
    """The 403 of a non-resource path (``/api`` as anonymous)."""
    return KubeApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {method.lower()} path "{path}"', {})


def authorize(state: KubeState, verb: str, resource: str, group: str, namespace: str, name: str | None, *,
              forbidden: bool) -> None:
    """Raise RBAC's 403 unless the access rules allow it; ``forbidden``: the fault denies all."""
    if resource == "selfsubjectaccessreviews":
        return  # system:basic-user lets every authenticated user ask
    if not forbidden and state.review_access(verb, resource, group, namespace):
        return
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    details: Obj = {"kind": resource}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    raise KubeApiError(403, "Forbidden", f'{subject} is forbidden: User "{state.user}" cannot {verb} '
                       f'resource "{resource}" in API group "{group}" {scope}', details)

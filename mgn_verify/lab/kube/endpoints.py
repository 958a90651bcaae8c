"""Kubernetes health and discovery endpoints, exactly as kube-apiserver formats them.

``/healthz``, ``/livez`` and ``/readyz`` answer a bare ``ok`` (no newline), switch to the
per-check listing with ``?verbose`` and always list on failure with status 500 (protocols.md
§2.4). ``/api`` and ``/apis`` are the legacy discovery documents the client's
``Accept: application/json`` gets.
"""

from __future__ import annotations

from collections.abc import Iterable

from mgn_verify.lab._httpserver import Request, Response, text_response
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["HEALTH_PATHS", "VERSION_INFO", "discovery", "endpoint_checks", "group_entry", "health"]

VERSION_INFO: Obj = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.2",
    "gitCommit": "39683505b630ff2121012f3c5b16215a1449d5ed",
    "gitTreeState": "clean",
    "buildDate": "2024-06-11T20:21:00Z",
    "goVersion": "go1.22.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_CHECKS = (
    "ping",
    "log",
    "etcd",
    "etcd-readiness",
    "informer-sync",
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/apiservice-registration-controller",
    "autoregister-completion",
    "shutdown",
)
_READYZ_ONLY = frozenset({"etcd-readiness", "informer-sync", "shutdown"})
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
_NOSNIFF = [("X-Content-Type-Options", "nosniff")]


#: What a failing health check prints at ``/<endpoint>/<name>`` (healthz.go's error text).
_ERRORS = {
    "etcd": "etcd client connection failed",
    "etcd-readiness": "etcd client connection failed",
    "informer-sync": "informers not started yet",
    "shutdown": "process is shutting down",
}


def endpoint_checks(kind: str) -> list[str]:
    """The checks ``/livez``, ``/readyz`` or ``/healthz`` run: one set of checks, shared; the
    readiness-only ones (``etcd-readiness``, ``informer-sync``, ``shutdown``) only in readyz."""
    return [c for c in _CHECKS if kind == "readyz" or c not in _READYZ_ONLY]


def health(req: Request, path: str, *, failing: frozenset[str] = frozenset()) -> Response:
    """``/healthz``, ``/livez``, ``/readyz`` and their single checks (protocols.md §2.4); the
    checks named in ``failing`` fail wherever they are run."""
    kind, _, single = path[1:].partition("/")
    checks = endpoint_checks(kind)
    failing = frozenset(failing & set(checks))
    if single:
        if single not in checks:
            raise KubeApiError(404, "NotFound", "the server could not find the requested resource")
        if single in failing:
            return text_response(500, f"internal server error: {_ERRORS.get(single, 'check failed')}\n")
        return Response(200, b"ok", "text/plain; charset=utf-8", list(_NOSNIFF))
    excluded = {e for values in req.query.get("exclude", []) for e in values.split(",") if e}
    unknown = sorted(excluded - set(checks))
    failed = bool(failing - excluded)
    if not failed and "verbose" not in req.query:
        return Response(200, b"ok", "text/plain; charset=utf-8", list(_NOSNIFF))
    lines = []
    for check in checks:
        if check in excluded:
            lines.append(f"[+]{check} excluded: ok")
        elif check in failing:
            lines.append(f"[-]{check} failed: reason withheld")
        else:
            lines.append(f"[+]{check} ok")
    if unknown:
        lines.append(
            "warn: some health checks cannot be excluded: no matches for "
            + ",".join(f'"{u}"' for u in unknown)
        )
    lines.append(f"{kind} check {'failed' if failed else 'passed'}")
    return Response(
        500 if failed else 200,
        ("\n".join(lines) + "\n").encode(),
        "text/plain; charset=utf-8",
        list(_NOSNIFF),
    )


def discovery(path: str, port: int, types: Iterable[ResourceType] = kr.RESOURCE_TYPES) -> Obj | None:
    """Legacy discovery documents for the served ``types``; None when ``path`` is not one."""
    groups: dict[str, list[ResourceType]] = {}
    for rt in types:
        groups.setdefault(rt.group_version, []).append(rt)
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}],
        }
    if path == "/apis":
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [group_entry(gv) for gv in groups if "/" in gv],
        }
    gv = path.removeprefix("/api/").removeprefix("/apis/")
    if gv in groups:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(rt.verbs),
                    **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
                }
                for rt in groups[gv]
            ],
        }
    if "/" not in gv and any(g.startswith(f"{gv}/") for g in groups):
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            **group_entry(next(g for g in groups if g.startswith(gv))),
        }
    return None


def group_entry(gv: str) -> Obj:
    group, version = gv.split("/")
    entry = {"groupVersion": gv, "version": version}
    return {"name": group, "versions": [entry], "preferredVersion": entry}


# -- resources ----------------------------------------------------------------------------------

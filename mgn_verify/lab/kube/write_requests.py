"""PUT and PATCH requests of the Kubernetes simulator: the content types, ``fieldManager``,
``force`` and the /status subresource, onto :meth:`KubeState.replace` / :meth:`KubeState.patch`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mgn_verify.lab._httpserver import Request
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.patch import APPLY, PATCH_TYPES
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.writes import has_status

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["json_body", "write_request"]

_TRUE = ("true", "True", "TRUE", "1", "t", "T")  # strconv.ParseBool


def json_body(req: Request) -> Any:
    # A missing Content-Type is JSON (the 37.x client sends none, protocols.md §2.1).
    try:
        return req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise KubeApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc


def _yaml_body(req: Request) -> Any:
    import yaml  # an apply body is YAML (JSON is YAML too)

    try:
        return yaml.safe_load(req.body.decode("utf-8")) if req.body else None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KubeApiError(400, "BadRequest", f"error decoding YAML: {exc}") from None


def write_request(state: KubeState, req: Request, rt: ResourceType, ns: str | None, name: str, sub: str | None,
                  manager: str) -> tuple[int, Obj]:
    """(status, object) of a PUT or PATCH; an apply that creates is a 201."""
    if sub not in (None, "status") or (sub == "status" and not has_status(rt)):
        raise KubeApiError(404, "NotFound", "the server could not find the requested resource")
    status_only = sub == "status"
    if req.method == "PUT":
        return 200, state.replace(rt, ns, name, json_body(req), manager=manager, status_only=status_only)
    ctype = req.header("content-type").split(";")[0].strip().lower()
    if ctype not in PATCH_TYPES:
        raise KubeApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           f"accepted media types include: {', '.join(PATCH_TYPES)}")
    force = req.query_value("force") in _TRUE
    if ctype == APPLY:
        body, manager = _yaml_body(req), req.query_value("fieldManager")
    else:
        body = json_body(req)
    obj, created = state.patch(rt, ns, name, ctype, body, manager=manager, force=force, status_only=status_only)
    return (201 if created else 200), obj

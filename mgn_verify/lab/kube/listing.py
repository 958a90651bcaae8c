"""How the Kubernetes simulator answers reads: a list (selectors, pages, a resourceVersion that
covers its items), a watch, or one object, each as a ``Table`` instead when the client's
``Accept`` asks for one (:mod:`~mgn_verify.lab.kube.tables`, what kubectl's ``get`` prints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mgn_verify.lab._httpserver import Request, Response, json_response
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.select import field_matcher, label_matcher, paginate
from mgn_verify.lab.kube.tables import table, wants_table
from mgn_verify.lab.kube.watch import WatchRequest, watch_stream

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["View", "list_response", "object_response", "watch_response"]

#: What the server shows of a stored object (faults applied); ``strip``: as a typed list item.
View = Callable[[Obj, bool], Obj]
_CRD = ("apiextensions.k8s.io", "customresourcedefinitions")


def _selection(req: Request, rt: ResourceType) -> tuple[Callable[[Obj], bool], bool]:
    labels = label_matcher(req.query_value("labelSelector") or None)
    fields = field_matcher(rt, req.query_value("fieldSelector") or None)
    filtered = bool(req.query_value("labelSelector") or req.query_value("fieldSelector"))
    return (lambda obj: labels(obj) and fields(obj)), filtered


def _printer_columns(state: KubeState, rt: ResourceType) -> list[Obj]:
    """The ``additionalPrinterColumns`` of the served version of a custom resource."""
    if not rt.custom:
        return []
    try:
        crd = state.get(state.rtype(*_CRD), None, f"{rt.plural}.{rt.group}")
    except KubeApiError:
        return []
    for version in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(version, dict) and version.get("name") == rt.version:
            return [c for c in version.get("additionalPrinterColumns") or [] if isinstance(c, dict)]
    return []


def _as_table(state: KubeState, req: Request, rt: ResourceType, items: list[Obj], metadata: Obj) -> Response | None:
    version = wants_table(req.header("accept"))
    if version is None:
        return None
    return json_response(200, table(rt, items, metadata=metadata, version=version,
                                    printer_columns=_printer_columns(state, rt)))


def list_response(state: KubeState, req: Request, rt: ResourceType, ns: str | None, view: View,
                  extra: list[Obj]) -> Response:
    """A list (``extra``: objects only the fault view adds), or its Table."""
    matches, filtered = _selection(req, rt)
    rv, stored = state.list_at(rt, ns)
    objs = [view(o, False) for o in stored] + extra
    page = paginate([o for o in objs if matches(o)], rv=rv, limit=req.query_value("limit"),
                    token=req.query_value("continue"), resource_version=req.query_value("resourceVersion"),
                    filtered=filtered)
    shown = _as_table(state, req, rt, page.items, page.metadata)
    if shown is not None:
        return shown
    items = [view(o, True) for o in page.items]
    return json_response(200, {"kind": f"{rt.kind}List", "apiVersion": rt.group_version,
                               "metadata": page.metadata, "items": items})


def object_response(state: KubeState, req: Request, rt: ResourceType, obj: Obj) -> Response:
    """One object as read (GET), or its one-row Table."""
    shown = _as_table(state, req, rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")})
    return shown if shown is not None else json_response(200, obj)


def watch_response(state: KubeState, req: Request, rt: ResourceType, ns: str | None, view: View,
                   stopped: Callable[[], bool]) -> Response:
    matches, _ = _selection(req, rt)
    try:
        timeout = float(req.query_value("timeoutSeconds") or 1800)
    except ValueError:
        raise KubeApiError(400, "BadRequest", "invalid value for timeoutSeconds") from None
    version, render = wants_table(req.header("accept")), None
    if version is not None:  # each event carries a one-row Table (kubectl get -w)
        columns = _printer_columns(state, rt)

        def render(obj: Obj) -> Obj:
            return table(rt, [obj], metadata={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                         version=str(version), printer_columns=columns)
    watch = WatchRequest(rt, ns, matches, lambda o: view(o, False), req.query_value("resourceVersion"), timeout,
                         render)
    return Response(200, content_type="application/json", stream=watch_stream(state, watch, stopped=stopped))


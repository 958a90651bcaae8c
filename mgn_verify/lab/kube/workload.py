"""The lab's pod network: one loopback HTTP server that answers for every running pod.

The API server's service proxy (:mod:`~mgn_verify.lab.kube.proxy`) connects here for a pod
and sends the pod's address as ``Host`` (``10.244.11.5:8080``); the server finds the pod by its
IP in the cluster state and answers as the workspace's web server would: ``/`` (and
``/index.html``) is a small HTML page naming the workspace, its image and pod, every other path
is a 404, and methods other than GET/HEAD on the page are a 405. ``requests`` records what
arrived (method, path, headers) as a witness for tests.
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, NamedTuple

from mgn_verify.lab._httpserver import HTTPSimulator, LabHTTPServer, Request, Response
from mgn_verify.lab.kube.operator import WORKSPACE_LABEL
from mgn_verify.lab.kube.resources import Obj

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["PodRequest", "WorkloadServer", "pod_by_ip", "pod_listens"]

_HTML = "text/html; charset=utf-8"


class PodRequest(NamedTuple):
    pod: str
    method: str
    path: str
    headers: dict[str, str]


def pod_by_ip(state: KubeState, ip: str) -> Obj | None:
    """The running pod that has ``ip`` (a pod address is unique among running pods)."""
    for pod in state.list(state.rtype("", "pods")):
        status = pod.get("status") or {}
        if status.get("podIP") == ip and status.get("phase") == "Running":
            return pod
    return None


def pod_listens(pod: Obj, port: int) -> bool:
    """A container listens on ``port``: a declared container port (any port when none is declared)."""
    declared = [int(p["containerPort"]) for c in (pod.get("spec") or {}).get("containers") or []
                for p in c.get("ports") or [] if isinstance(p, dict) and "containerPort" in p]
    return not declared or port in declared


class WorkloadServer(HTTPSimulator):
    """Plain HTTP on 127.0.0.1 standing for every pod's web server."""

    def __init__(self, state: KubeState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._requests: list[PodRequest] = []
        self._server = LabHTTPServer(self._app, host=host, port=port, name="pod-net", server_header=False)

    @property
    def requests(self) -> list[PodRequest]:
        with self._lock:
            return list(self._requests)

    def _app(self, req: Request) -> Response:
        ip = req.header("host").rsplit(":", 1)[0]
        pod = pod_by_ip(self.state, ip)
        if pod is None:  # the proxy checked; a pod that stopped in between
            return Response(502, b"pod is gone\n", "text/plain; charset=utf-8")
        with self._lock:
            self._requests.append(PodRequest(pod["metadata"]["name"], req.method, req.target, dict(req.headers)))
        if req.path not in ("/", "/index.html"):
            return Response(404, b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>"
                                 b"</body></html>\n", _HTML)
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"<html><body><h1>405 Not Allowed</h1></body></html>\n", _HTML,
                            [("Allow", "GET, HEAD")])
        return Response(200, _page(pod, req.header("x-forwarded-prefix")).encode(), _HTML)


def _page(pod: Obj, prefix: str) -> str:
    labels = pod["metadata"].get("labels") or {}
    name = labels.get(WORKSPACE_LABEL) or labels.get("app") or pod["metadata"]["name"]
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    e = html.escape
    lines = [f"<!doctype html><html><head><title>{e(name)}</title></head><body>",
             f"<h1>Workspace {e(name)}</h1>", f"<p>image: {e(image)}</p>",
             f"<p>pod: {e(pod['metadata']['name'])}</p>"]
    if prefix:
        lines.append(f"<p>served under: {e(prefix)}</p>")
    lines.append("</body></html>\n")
    return "\n".join(lines)

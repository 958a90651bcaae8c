"""The API server's service proxy: ``/api/v1/namespaces/{ns}/services/[scheme:]name[:port]/proxy{path}``.

As kube-apiserver's ``ResourceLocation`` resolves it: the Service must exist (404 Status); a port
number must be one of its ports (else 503 ``no service port N found for service "x"``); its
Endpoints are the ready pods the selector picks (no selector: no Endpoints, 404); none, or none
with the port: 503 ``no endpoints available for service "x"``. Then the request goes to the pod,
i.e. to the lab's pod network (:mod:`~mgn_verify.lab.kube.workload`), without the caller's
``Authorization``; a pod that does not listen on the port is the transport's 503
``error trying to reach service: dial tcp IP:PORT: connect: connection refused``, and so is one
whose container never started (an image that cannot be pulled: a not-ready address is published
with ``publishNotReadyAddresses``).
"""

from __future__ import annotations

import http.client
import re
from typing import TYPE_CHECKING, NamedTuple

from mgn_verify.lab._httpserver import Request, Response
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj
from mgn_verify.lab.kube.workload import pod_listens

if TYPE_CHECKING:
    from mgn_verify.lab.kube.store import KubeState

__all__ = ["ProxyTarget", "parse_proxy_path", "service_proxy"]

_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<spec>[^/]+)/proxy(?P<rest>/.*)?$")
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "authorization", "content-length"})


class ProxyTarget(NamedTuple):
    namespace: str
    scheme: str
    service: str
    port: str
    path: str


def parse_proxy_path(path: str) -> ProxyTarget | None:
    """``net.SplitSchemeNamePort`` of the service segment, or None for another path."""
    m = _PATH.match(path)
    if m is None:
        return None
    parts = m["spec"].split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        scheme, name, port = "", "", ""
    if not name or scheme not in ("", "http", "https"):
        raise KubeApiError(400, "BadRequest", f'invalid service request "{m["spec"]}"')
    return ProxyTarget(m["ns"], scheme or "http", name, port, m["rest"] or "/")


def _unavailable(message: str) -> KubeApiError:
    return KubeApiError(503, "ServiceUnavailable", message)


def _resolve(state: KubeState, t: ProxyTarget) -> tuple[Obj, int]:
    """(pod, port) the request goes to."""
    svc = state.get(state.rtype("", "services"), t.namespace, t.service)
    ports = (svc.get("spec") or {}).get("ports") or []
    chosen = None
    if t.port.isdigit():
        chosen = next((p for p in ports if int(p.get("port", 0)) == int(t.port)), None)
        if chosen is None:
            raise _unavailable(f'no service port {t.port} found for service "{t.service}"')
    else:
        chosen = next((p for p in ports if (p.get("name") or "") == t.port), None)
    pods = state.service_endpoints(t.namespace, t.service)
    if pods is None:
        raise KubeApiError(404, "NotFound", f'endpoints "{t.service}" not found',
                           {"name": t.service, "kind": "endpoints"})
    if not pods or chosen is None:
        raise _unavailable(f'no endpoints available for service "{t.service}"')
    pod = pods[0]
    target = chosen.get("targetPort", chosen.get("port"))
    if not isinstance(target, int):  # a named container port
        named = [p for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []
                 if p.get("name") == target]
        target = int(named[0]["containerPort"]) if named else int(chosen.get("port", 0))
    return pod, int(target)


def service_proxy(state: KubeState, req: Request, t: ProxyTarget, pod_network: tuple[str, int]) -> Response:
    pod, port = _resolve(state, t)
    ip = pod["status"]["podIP"]
    refused = _unavailable(f"error trying to reach service: dial tcp {ip}:{port}: connect: connection refused")
    if t.scheme == "https" or not pod_listens(pod, port) or pod["status"].get("phase") != "Running":
        raise refused  # the pod network speaks plain HTTP only; a container that never started listens nowhere
    query = req.target.partition("?")[2]
    headers = {k: v for k, v in req.headers.items() if k not in _HOP}
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {req.client_host}" if forwarded else req.client_host
    headers["host"] = f"{ip}:{port}"
    conn = http.client.HTTPConnection(*pod_network, timeout=30)
    try:
        conn.request(req.method, t.path + (f"?{query}" if query else ""), body=req.body or None, headers=headers)
        upstream = conn.getresponse()
        body = upstream.read()
    except OSError:
        raise refused from None
    finally:
        conn.close()
    # The server writes its own Content-Type, Date and Server headers.
    out = [(k, v) for k, v in upstream.getheaders() if k.lower() not in _HOP | {"content-type", "date", "server"}]
    return Response(upstream.status, body, upstream.getheader("Content-Type"), out)

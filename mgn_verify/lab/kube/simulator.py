"""A Kubernetes API server simulator that the real ``kubernetes`` Python client accepts.

HTTPS with a lab-CA certificate (IP SAN 127.0.0.1), bearer-token authentication, health
endpoints, legacy discovery, and list/get/create/delete for the resource types in
:mod:`mgn_verify.lab.kube.resources`, backed by a :class:`KubeState`. Wire formats follow
protocols.md §2 (Status objects, ``ok`` without newline, SSAR answered with 201, ...).

Lists honour ``labelSelector``, ``fieldSelector``, ``limit`` and ``continue``
(:mod:`~mgn_verify.lab.kube.select`), ``watch=true`` streams changes
(:mod:`~mgn_verify.lab.kube.watch`), and a read asked for with ``Accept: ...;as=Table`` (kubectl)
answers the Table of the real printers (:mod:`~mgn_verify.lab.kube.listing`,
:mod:`~mgn_verify.lab.kube.tables`).

Writes: POST, PUT (``resourceVersion`` checked), PATCH (merge, JSON, strategic-merge and
server-side apply with ``fieldManager``/``force``, :mod:`~mgn_verify.lab.kube.patch`) and DELETE,
through the store's admission and controllers. ``/api/v1/namespaces/{ns}/services/{svc}/proxy/...``
is the service proxy (:mod:`~mgn_verify.lab.kube.proxy`) into the lab's pod network, a loopback
HTTP server started with the simulator (:mod:`~mgn_verify.lab.kube.workload`). ``bare=True``:
the cluster before GuildNet is installed (:func:`~mgn_verify.lab.kube.seed.seed_cluster`).

Faults (checked on every request): ``kubernetes.down``, ``kubernetes.slow``,
``kubernetes.readyz_failing`` (etcd unreachable: ``[-]etcd`` in /livez and /readyz, reads fail),
``kubernetes.shutting_down`` (``[-]shutdown`` in /readyz only), ``kubernetes.forbidden``,
``tls.expired``, and the object faults of :mod:`~mgn_verify.lab.kube.faults`
(``node_not_ready``, ``pod_crashloop``, ``operator_down``, ``no_default_storageclass``), and
``kubernetes.image_pull_failing`` (the node reaches no registry: every workspace's pod waits in
``ErrImagePull``/``ImagePullBackOff``, :mod:`~mgn_verify.lab.kube.images`).
"""

from __future__ import annotations

import base64
import functools
import ssl
import threading
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import (
    DropConnection,
    HTTPSimulator,
    LabHTTPServer,
    Request,
    Response,
    json_response,
    text_response,
)
from mgn_verify.lab._tls import LabCA, server_ssl_context
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.access import access_review, authorize, forbidden_path
from mgn_verify.lab.kube.endpoints import HEALTH_PATHS, VERSION_INFO, discovery, health
from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError
from mgn_verify.lab.kube.faults import OBJECT_FAULTS, FaultView
from mgn_verify.lab.kube.images import log_refusal
from mgn_verify.lab.kube.kubeconfig import kubeconfig_yaml
from mgn_verify.lab.kube.listing import list_response, object_response, watch_response
from mgn_verify.lab.kube.proxy import parse_proxy_path, service_proxy
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.store import AccessRule, KubeState
from mgn_verify.lab.kube.workload import WorkloadServer
from mgn_verify.lab.kube.write_requests import json_body, write_request
from mgn_verify.lab.kube.writes import has_status, user_agent_manager

__all__ = ["AccessRule", "KubeApiError", "KubeConnectionError", "KubeSimulator", "KubeState"]

_TRUE = ("true", "True", "TRUE", "1", "t", "T")  # strconv.ParseBool
#: Registries with ``ReturnDeletedObject``: a DELETE answers with the object, not a Status.
_RETURN_DELETED = frozenset({("", "namespaces"), ("", "pods"), ("", "services"), ("", "serviceaccounts"),
                             ("storage.k8s.io", "storageclasses")})


class _Target(NamedTuple):
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class _EtcdDown(Exception):
    """Storage did not answer (``kubernetes.readyz_failing``)."""


class KubeSimulator(HTTPSimulator):
    """An HTTPS kube-apiserver on 127.0.0.1 backed by a :class:`KubeState`."""

    FAULTS: ClassVar[frozenset[str]] = frozenset(
        {
            "kubernetes.down",
            "kubernetes.slow",
            "kubernetes.readyz_failing",
            "kubernetes.shutting_down",
            "kubernetes.forbidden",
            "tls.expired",
            *OBJECT_FAULTS,
        }
    )

    def __init__(
        self,
        *,
        ca: LabCA,
        faults: FaultSet | None = None,
        token: str = "lab-token",
        state: KubeState | None = None,
        slow_delay: float = 3.0,
        workspace_pending_delay: float = 0.5,
        workspace_running_delay: float = 2.0,
        workload_ready_delay: float = 0.3,
        bare: bool = False,
        node_not_ready_name: str = "lab-worker",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.ca = ca
        self.faults = faults if faults is not None else FaultSet(self.FAULTS)
        self.token = token
        self.state = (
            state
            if state is not None
            else KubeState(
                workspace_pending_delay=workspace_pending_delay,
                workspace_running_delay=workspace_running_delay,
                workload_ready_delay=workload_ready_delay,
                bare=bare,
            )
        )
        # The operator's pod failing its readiness probe stops reconciling (the fault's meaning).
        self.state.operator.gate = lambda: not self.faults.active("kubernetes.operator_down")
        # No registry answers the node: every workspace image pull fails (``kubernetes.image_pull_failing``).
        self.state.operator.registry_down = lambda: self.faults.active("kubernetes.image_pull_failing")
        self.pod_network = WorkloadServer(self.state)
        self.slow_delay = slow_delay
        self.node_not_ready_name = node_not_ready_name
        self.fault_view = FaultView(self.faults, node_not_ready_name=node_not_ready_name,
                                    lookup=self._lookup, resource_version=lambda: self.state.resource_version)
        self._ctx = server_ssl_context(ca.issue_server_cert("kube-apiserver"), alpn=("http/1.1",))
        self._expired_ctx = server_ssl_context(ca.issue_expired_server_cert("kube-apiserver-expired"))
        self._server = LabHTTPServer(
            self._app,
            ssl_context=self._pick_context,
            down=lambda: self.faults.active("kubernetes.down"),
            host=host,
            port=port,
            name="kube-sim",
        )
        self._log_lock = threading.Lock()
        self._requests: list[tuple[str, str, int]] = []

    # -- accessors (sync_faults/url/port/running: HTTPSimulator) -----------------------------------

    def start(self) -> None:
        self.pod_network.start()
        try:
            super().start()
        except BaseException:
            self.pod_network.stop()
            raise

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.pod_network.stop()

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, request target, status) of every request answered, oldest first."""
        with self._log_lock:
            return list(self._requests)

    def _pick_context(self) -> ssl.SSLContext:
        return self._expired_ctx if self.faults.active("tls.expired") else self._ctx

    # -- kubeconfig ---------------------------------------------------------------------------------

    def kubeconfig_text(
        self,
        *,
        context: str = "mgn-lab",
        user: str = "mgn-lab-admin",
        embed_ca: bool = False,
        namespace: str | None = None,
    ) -> str:
        """A kubeconfig for this server (needs ``start()`` first, for the port)."""
        if self.port == 0:
            raise RuntimeError("start() the simulator before asking for its kubeconfig")
        ca = ("data", base64.b64encode(self.ca.ca_pem).decode()) if embed_ca else \
            ("file", str(self.ca.ca_path.resolve()))
        return kubeconfig_yaml(self.url, self.token, ca, context=context, user=user, namespace=namespace)

    def write_kubeconfig(self, path: str | Path, **kwargs: Any) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.kubeconfig_text(**kwargs))
        target.chmod(0o600)
        return target

    # -- what a client (the Host App simulator) would experience right now -------------------------

    def check_client(
        self, verb: str = "get", resource: str = "", group: str = "", namespace: str = ""
    ) -> None:
        """Raise as a Go client of this server would fail now; ``resource=""`` means /version."""
        self._server.sync()  # a fault changed a moment ago must be visible to this "client" too
        if not self._server.running or not self._server.listening or self.faults.active("kubernetes.down"):
            raise KubeConnectionError(f"dial tcp 127.0.0.1:{self.port}: connect: connection refused")
        if self.faults.active("tls.expired"):
            raise KubeConnectionError(
                "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
            )
        if self.faults.active("kubernetes.slow"):
            raise KubeConnectionError(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )
        if resource:
            self._authorize(verb, resource, group, namespace, None)

    # -- HTTP app -------------------------------------------------------------------------------------

    def _app(self, req: Request) -> Response:
        if self.faults.active("kubernetes.slow") and self._server.stopping.wait(self.slow_delay):
            raise DropConnection  # stop() during the delay: the client sees the connection close
        try:
            resp = self._route(req)
        except KubeApiError as err:
            resp = json_response(err.code, err.status())
        except _EtcdDown:
            resp = json_response(500, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "etcdserver: request timed out", "code": 500})
        with self._log_lock:
            self._requests.append((req.method, req.target, resp.status))
        return resp

    def _route(self, req: Request) -> Response:
        user = self._authenticate(req)
        path = req.path.rstrip("/") or "/"
        if path == "/version":
            return json_response(200, VERSION_INFO)
        if path.split("/")[1:2] and f"/{path.split('/')[1]}" in HEALTH_PATHS:
            return health(req, path, failing=self._failing_health())
        if user is None:
            raise forbidden_path("system:anonymous", req.method, path)
        if path in ("/api", "/apis") or path.startswith(("/api/v1", "/apis/")):
            document = discovery(path, self.port, self.state.served_types())
            if document is not None:
                return json_response(200, document)
        proxied = parse_proxy_path(req.path)
        if proxied is not None:
            verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete"}.get(req.method, "get")
            self._authorize(verb, "services/proxy", "", proxied.namespace, proxied.service)
            self._etcd_check()
            return service_proxy(self.state, req, proxied, ("127.0.0.1", self.pod_network.port))
        target = self._parse(path)
        if target is None:
            raise KubeApiError(404, "NotFound", "the server could not find the requested resource")
        return self._resource(req, target)

    def _authenticate(self, req: Request) -> str | None:
        """The user name, ``None`` for anonymous; a wrong credential is a 401 even on /healthz."""
        header = req.header("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or value.strip() != self.token:
            raise KubeApiError(401, "Unauthorized", "Unauthorized")
        return self.state.user

    def _authorize(self, verb: str, resource: str, group: str, namespace: str, name: str | None) -> None:
        authorize(self.state, verb, resource, group, namespace, name,
                  forbidden=self.faults.active("kubernetes.forbidden"))

    # -- health -------------------------------------------------------------------------------------

    def _failing_health(self) -> frozenset[str]:
        failing: set[str] = set()
        if self.faults.active("kubernetes.readyz_failing"):
            failing |= {"etcd", "etcd-readiness"}  # etcd unreachable: liveness and readiness
        if self.faults.active("kubernetes.shutting_down"):
            failing.add("shutdown")  # graceful termination: not ready, still live and serving
        return frozenset(failing)

    def _lookup(self, plural: str, namespace: str, name: str) -> Obj | None:
        rtype = kr.find_type("", "v1", plural)
        if rtype is None:
            return None
        try:
            return self.state.get(rtype, namespace, name)
        except KubeApiError:
            return None

    def _etcd_check(self) -> None:
        if self.faults.active("kubernetes.readyz_failing"):
            # etcd does not answer: storage errors reach the client as a reason-less 500.
            raise _EtcdDown

    def _parse(self, path: str) -> _Target | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.state.find_type(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        rtype = self.state.find_type(group, version, rest[0])
        if rtype is None or len(rest) > 3 or (rtype.namespaced and namespace is None and len(rest) > 1):
            return None
        return _Target(
            rtype, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
        )

    def _resource(self, req: Request, t: _Target) -> Response:
        rt, ns, name, sub = t
        if rt.plural == "selfsubjectaccessreviews":
            if req.method != "POST" or name:
                raise KubeApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            return self._ssar(req)
        verbs = {"GET": "get" if name else "list", "POST": "create", "DELETE": "delete", "PUT": "update",
                 "PATCH": "patch"}
        verb = verbs.get(req.method)
        if verb is None or (verb == "create" and (name or (rt.namespaced and ns is None))) or \
                (verb in ("delete", "update", "patch") and not name):
            raise KubeApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        watching = verb == "list" and req.query_value("watch") in _TRUE
        self._authorize("watch" if watching else verb, rt.plural if not sub else f"{rt.plural}/{sub}", rt.group,
                        ns or "", name)
        self._etcd_check()
        view = functools.partial(self._view, rt)
        if watching:
            return watch_response(self.state, req, rt, ns, view, stopped=lambda: self._server.stopping.is_set()
                                  or self.faults.active("kubernetes.down"))
        if verb == "list":
            return list_response(self.state, req, rt, ns, view, self.fault_view.extra(rt, ns))
        if verb == "create":
            return json_response(201, self.state.create(rt, ns, self._body(req), manager=self._manager(req)))
        assert name is not None
        if verb in ("update", "patch"):
            return self._write(req, rt, ns, name, sub)
        if verb == "get":
            obj = self.state.get(rt, ns, name)
            if sub == "log" and rt.plural == "pods":
                refusal = log_refusal(obj)
                if refusal is not None:
                    raise KubeApiError(400, "BadRequest", refusal)
                lines = self.state.pod_log(ns or "", name)
                return text_response(200, "".join(f"{line}\n" for line in lines))
            if sub not in (None, "status") or (sub == "status" and not has_status(rt)):
                raise KubeApiError(404, "NotFound", "the server could not find the requested resource")
            return object_response(self.state, req, rt, self._view(rt, obj))
        deleted = self.state.delete(rt, ns, name)
        if rt.key in _RETURN_DELETED:
            return json_response(200, deleted)  # e.g. a namespace: Terminating
        details: Obj = {"name": name, "kind": rt.plural, "uid": deleted["metadata"].get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        return json_response(
            200,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )

    @staticmethod
    def _manager(req: Request) -> str:
        return req.query_value("fieldManager") or user_agent_manager(req.header("user-agent"))

    def _write(self, req: Request, rt: ResourceType, ns: str | None, name: str, sub: str | None) -> Response:
        status, obj = write_request(self.state, req, rt, ns, name, sub, self._manager(req))
        return json_response(status, obj)

    def _view(self, rt: ResourceType, obj: Obj, strip: bool = False) -> Obj:
        obj = self.fault_view.obj(rt, obj)
        if strip and not rt.custom:
            # Typed lists carry apiVersion/kind on the list only; custom resources keep them.
            obj = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        return obj

    @staticmethod
    def _body(req: Request) -> Any:
        return json_body(req)

    def _ssar(self, req: Request) -> Response:
        forbidden = self.faults.active("kubernetes.forbidden")
        return json_response(201, access_review(self.state, self._body(req), forbidden=forbidden))

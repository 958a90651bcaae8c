"""A Kubernetes API client built from a cluster's kubeconfig, with typed errors.

``load`` reads the kubeconfig (first of ``_clusters.kubeconfig_candidates``), picks the
context and checks the credentials that can be judged locally (an expired client certificate,
an exec plugin that yields nothing); ``connect`` also asks ``GET /version`` so that a rejected
token is an ``AuthError`` naming the kubeconfig's user entry. ``translate`` turns any error of
the ``kubernetes`` client into the framework's ``ClientError`` tree. TLS is always verified.
Secret values (tokens, client keys, passwords) are registered with ``config.mark_secret`` and
never appear in a message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mgn_verify._exceptions import ApiError, AuthError, ClientError, NotConfiguredError, UnreachableError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from mgn_verify.config import Config

__all__ = [
    "KubeConnection",
    "KubeconfigError",
    "api",
    "close",
    "connect",
    "load",
    "plain",
    "request",
    "server_version",
    "translate",
    "unauthorized",
]

COMPONENT = "kubernetes"
T = TypeVar("T")


class _Target(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kubeconfig(self) -> str | None: ...
    @property
    def context(self) -> str | None: ...


class KubeconfigError(ClientError):
    """The kubeconfig cannot be used: unreadable, malformed, or naming a missing context."""


@dataclass(frozen=True)
class KubeConnection:
    """A ready ``ApiClient`` and where it came from (file, setting, context, user, server)."""

    api_client: ApiClient = field(repr=False)
    path: Path
    source: str
    context: str
    user: str
    server: str
    timeout: float = 5.0

    def describe(self) -> str:
        """``context 'c' (user 'u') of /path (from KUBECONFIG)``: what a result says was used."""
        return f"context {self.context!r} (user {self.user!r}) of {self.path} (from {self.source})"


# -- loading -------------------------------------------------------------------------------------


def _find(target: _Target) -> tuple[Path, str]:
    import importlib

    # checks/ ships as mgn_verify.checks (package-dir): the one place that knows the lookup order.
    clusters: Any = importlib.import_module("mgn_verify.checks._clusters")
    candidates: list[tuple[Path, str]] = clusters.kubeconfig_candidates(target)
    for path, source in candidates:
        if path.is_file():
            return path, source
    if not candidates:
        raise NotConfiguredError(f"no kubeconfig for cluster {target.id!r}: give it one in clusters:",
                                 component=COMPONENT, target=target.id)
    where = ", ".join(f"{path} ({source})" for path, source in candidates)
    raise NotConfiguredError(f"no kubeconfig found at {where}", component=COMPONENT, target=target.id)


def _read(path: Path, cluster: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}",
                              component=COMPONENT, target=cluster) from None
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path} is not a text (YAML) file", component=COMPONENT,
                              target=cluster) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML{where}",
                              component=COMPONENT, target=cluster) from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise KubeconfigError(f"kubeconfig {path} has no 'contexts' list", component=COMPONENT, target=cluster)
    return data


def _named(data: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for entry in data.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = entry.get(section[:-1])
            return inner if isinstance(inner, dict) else {}
    return None


def _pick_context(data: dict[str, Any], wanted: str | None, path: Path, cluster: str
                  ) -> tuple[str, dict[str, Any]]:
    name = wanted or data.get("current-context")
    if not name:
        raise KubeconfigError(f"kubeconfig {path} has no current-context; set kubernetes.context",
                              component=COMPONENT, target=cluster)
    context = _named(data, "contexts", str(name))
    if context is None:
        known = ", ".join(str(c.get("name")) for c in data["contexts"] if isinstance(c, dict)) or "none"
        raise KubeconfigError(f"kubeconfig {path} has no context {name!r} (contexts: {known})",
                              component=COMPONENT, target=cluster)
    return str(name), context


def _client_cert_pem(user: dict[str, Any], base: Path) -> bytes | None:
    if user.get("client-certificate-data"):
        try:
            return base64.b64decode(str(user["client-certificate-data"]))
        except (binascii.Error, ValueError):
            return None
    if user.get("client-certificate"):
        path = Path(str(user["client-certificate"])).expanduser()
        try:
            return (path if path.is_absolute() else base / path).read_bytes()
        except OSError:
            return None
    return None


def _check_client_cert(user: dict[str, Any], base: Path, user_name: str, cluster: str) -> None:
    """An expired (or not yet valid) client certificate: the server would answer 401."""
    pem = _client_cert_pem(user, base)
    if pem is None:
        return
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise AuthError(f"the client certificate of kubeconfig user {user_name!r} is not a PEM certificate",
                        component=COMPONENT, target=cluster) from None
    now = _dt.datetime.now(_dt.UTC)
    if cert.not_valid_after_utc < now:
        raise AuthError(f"the client certificate of kubeconfig user {user_name!r} expired on "
                        f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC", component=COMPONENT, target=cluster)
    if cert.not_valid_before_utc > now:
        raise AuthError(f"the client certificate of kubeconfig user {user_name!r} is not valid before "
                        f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC", component=COMPONENT, target=cluster)


def _bearer(configuration: Any) -> str:
    """``Bearer <token>`` as the loader stored it (``BearerToken`` in 37.x, ``authorization`` before)."""
    keys = configuration.api_key or {}
    return str(keys.get("BearerToken") or keys.get("authorization") or "")


def _mark_secrets(config: Config | None, user: dict[str, Any], configuration: Any) -> None:
    if config is None:
        return
    for key in ("token", "password", "client-key-data"):
        if user.get(key):
            config.mark_secret(str(user[key]))
    bearer = _bearer(configuration)
    if bearer:
        config.mark_secret(bearer.split(" ", 1)[-1])
        config.mark_secret(bearer)
    if user.get("client-key-data"):
        with contextlib.suppress(binascii.Error, ValueError):
            config.mark_secret(base64.b64decode(str(user["client-key-data"])).decode())


def _configure(data: dict[str, Any], context_name: str, path: Path, cluster: str) -> Any:
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    configuration = Configuration()
    try:
        loader = KubeConfigLoader(config_dict=data, active_context=context_name,  # type: ignore[no-untyped-call]
                                  config_base_path=str(path.parent))
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeconfigError(f"kubeconfig {path}, context {context_name!r}: {exc}",
                              component=COMPONENT, target=cluster) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise KubeconfigError(f"kubeconfig {path}, context {context_name!r} is unusable: "
                              f"{type(exc).__name__}", component=COMPONENT, target=cluster) from None
    configuration.verify_ssl = True  # a kubeconfig's insecure-skip-tls-verify is not honoured
    configuration.retries = False  # one attempt: the checks judge latency and deadlines themselves
    return configuration


def load(target: _Target, *, config: Config | None = None, timeout: float = 5.0) -> KubeConnection:
    """The connection the cluster's kubeconfig describes, without a request to the server."""
    path, source = _find(target)
    data = _read(path, target.id)
    context_name, context = _pick_context(data, target.context, path, target.id)
    user_name = str(context.get("user") or "")
    user = _named(data, "users", user_name) if user_name else {}
    if user is None:
        raise KubeconfigError(f"kubeconfig {path}: context {context_name!r} names user {user_name!r}, "
                              "which has no entry", component=COMPONENT, target=target.id)
    _check_client_cert(user, path.parent, user_name, target.id)
    configuration = _configure(data, context_name, path, target.id)
    _mark_secrets(config, user, configuration)
    if user.get("exec") and not _bearer(configuration) and not configuration.cert_file:
        command = str((user.get("exec") or {}).get("command") or "?")
        raise AuthError(f"the exec plugin {command!r} of kubeconfig user {user_name!r} gave no credentials",
                        component=COMPONENT, target=target.id)
    from kubernetes.client import ApiClient

    return KubeConnection(api_client=ApiClient(configuration), path=path, source=source, context=context_name,
                          user=user_name, server=str(configuration.host), timeout=timeout)


def connect(target: _Target, *, config: Config | None = None, timeout: float = 5.0) -> KubeConnection:
    """``load`` and ``GET /version``: a connection the server has accepted (raises otherwise)."""
    conn = load(target, config=config, timeout=timeout)
    try:
        server_version(conn)
    except BaseException:
        close(conn)
        raise
    return conn


def close(conn: KubeConnection) -> None:
    """Release the connection pool (and the client's worker thread pool, if one was started)."""
    with contextlib.suppress(Exception):  # closing is best effort
        conn.api_client.close()  # type: ignore[no-untyped-call]


# -- requests and errors ---------------------------------------------------------------------------


def request(conn: KubeConnection, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` with the connection's timeout, client errors translated."""
    kwargs.setdefault("_request_timeout", conn.timeout)
    try:
        return call(*args, **kwargs)
    except ClientError:
        raise
    except Exception as exc:  # every client failure becomes a typed error
        raise translate(exc, conn) from None


def server_version(conn: KubeConnection) -> dict[str, Any]:
    """``GET /version`` as a dict (``gitVersion``, ``major``, ``minor`` ...)."""
    info = request(conn, api(conn, "VersionApi").get_code)
    return dict(plain(conn, info))


def api(conn: KubeConnection, name: str) -> Any:
    """``kubernetes.client.<name>(conn.api_client)``: ``CoreV1Api``, ``AppsV1Api`` ..."""
    import kubernetes.client

    return getattr(kubernetes.client, name)(conn.api_client)


def plain(conn: KubeConnection, obj: Any) -> Any:
    """A model object as JSON-style dicts and lists (camelCase keys, as the server sent)."""
    return conn.api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def _status_message(body: object) -> tuple[str, str]:
    import json

    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else {}
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("message") or ""), str(data.get("reason") or "")


def _unreachable_reason(exc: BaseException) -> str:
    import ssl

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return f"TLS verification failed: {cur.verify_message or cur.reason}"
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cur, TimeoutError) or "timed out" in str(cur).lower():
            return "timed out"
        nxt = getattr(cur, "reason", None)
        cur = nxt if isinstance(nxt, BaseException) else (cur.__cause__ or cur.__context__)
    text = str(exc)
    return text.split(": ", 1)[-1][:200] if text else type(exc).__name__


def unauthorized(conn: KubeConnection) -> AuthError:
    """The error for a 401: the server rejected the kubeconfig user's credentials."""
    return AuthError(f"{conn.server} rejected the credentials of kubeconfig user {conn.user!r} "
                     "(401 Unauthorized): the token or certificate is invalid or expired",
                     component=COMPONENT, target=conn.server)


def translate(exc: BaseException, conn: KubeConnection) -> ClientError:
    """The ``ClientError`` for an exception raised by the ``kubernetes`` client (or urllib3)."""
    from kubernetes.client.exceptions import ApiException

    where = conn.server
    if isinstance(exc, ApiException) and exc.status:
        message, reason = _status_message(exc.body)
        if exc.status == 401:
            return unauthorized(conn)
        text = message or f"{exc.status} {exc.reason}"
        return ApiError(f"{where}: {text}", component=COMPONENT, target=where, status=exc.status,
                        code=reason or str(exc.reason or ""))
    return UnreachableError(f"{where} unreachable: {_unreachable_reason(exc)}", component=COMPONENT,
                            target=where)

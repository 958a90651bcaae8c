"""The Host App's workspace proxy ``/api/cluster/{id}/proxy/server/{svc}/{rest}`` (§2.9.8).

A real HTTPS request to the cluster's API server, with the cluster's stored credentials (its
CA, its bearer token), to the service proxy
``/api/v1/namespaces/default/services/http:{svc}:{port}/proxy{rest}`` (``port``: the Service's
first port, else 80). As in ``internal/proxy/reverse_proxy.go``: the caller's headers go along
(hop-by-hop ones aside) with ``X-Forwarded-Host``/``-Proto``/``-For``, ``X-Forwarded-Prefix``
``/api/cluster/{id}/proxy/server/{svc}`` and ``X-Guild-Server-ID``; an ``Authorization`` header
the caller sent is forwarded too (client-go's bearer round tripper keeps an existing one, so
the API server then judges the caller's token); the ``to``/``path``/``scheme`` query
parameters are dropped; the answer (the API server's Status on 404/503 included) is passed
back with the iframe-friendly header rewrites; no answer at all is ``502 upstream error: ...``.
The port-forward fallback (missing Endpoints) is not simulated: the request always takes the
API server path, which is where a Service without ready pods ends up in the real app too.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit

from mgn_verify.lab._httpserver import Response
from mgn_verify.lab.hostapp.model import Clients, Ctx, text

__all__ = ["proxy_server"]

_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "content-length"})
_TIMEOUT = 60.0


def _tls_context(clients: Clients) -> ssl.SSLContext:
    if clients.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if clients.ca_data:
        return ssl.create_default_context(cadata=base64.b64decode(clients.ca_data).decode())
    if clients.ca_file:
        return ssl.create_default_context(cafile=clients.ca_file)
    return ssl.create_default_context()


def _go_error(exc: BaseException, hostport: str) -> str:
    """The transport error as Go's http.Transport words it."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {hostport}: connect: connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = "certificate has expired or is not yet valid" if "expired" in str(exc) else \
            "certificate signed by unknown authority"
        return f"tls: failed to verify certificate: x509: {reason}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "context deadline exceeded"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead)):
        return "EOF"
    if isinstance(exc, (FileNotFoundError, ssl.SSLError)):
        return f"unable to load root certificates: {exc}"
    return str(exc) or type(exc).__name__


def _canonical(name: str) -> str:
    """``http.CanonicalHeaderKey``: ``x-forwarded-for`` -> ``X-Forwarded-For``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _headers(ctx: Ctx, prefix: str, service: str) -> dict[str, str]:
    headers = {k: v for k, v in ctx.req.headers.items() if k not in _HOP}
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {ctx.req.client_host}" if forwarded else ctx.req.client_host
    if ctx.req.header("host"):
        headers["x-forwarded-host"] = ctx.req.header("host")
    headers["x-forwarded-proto"] = "https" if ctx.req.tls else "http"
    headers["x-forwarded-prefix"] = prefix
    headers["x-guild-server-id"] = service
    return headers


def _rewrite(upstream: http.client.HTTPResponse, prefix: str) -> list[tuple[str, str]]:
    """``ModifyResponse``: what the Host App changes so a workspace embeds in its UI's iframe."""
    # Content-Type, Date and Server are the Host App's own to write.
    drop = _HOP | {"content-type", "date", "server", "x-frame-options", "cross-origin-embedder-policy"}
    out = [(k, v) for k, v in upstream.getheaders() if k.lower() not in drop | {
        "cross-origin-opener-policy", "cross-origin-resource-policy", "content-security-policy",
        "service-worker-allowed", "location"}]
    csp = upstream.getheader("Content-Security-Policy")
    if csp:
        parts = [" frame-ancestors *" if "frame-ancestors" in p.lower() else p for p in csp.split(";")]
        if not any("frame-ancestors" in p.lower() for p in csp.split(";")):
            parts.append(" frame-ancestors *")
        csp = "; ".join(p.strip() for p in parts if p.strip())
    out += [("Cross-Origin-Opener-Policy", "same-origin-allow-popups"),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
            ("Content-Security-Policy", csp or "frame-ancestors *"), ("Service-Worker-Allowed", prefix)]
    if not upstream.getheader("Referrer-Policy"):
        out.append(("Referrer-Policy", "no-referrer"))
    location = upstream.getheader("Location")
    if location:
        path = urlsplit(location).path if "://" in location else location
        out.append(("Location", prefix.rstrip("/") + (path if path.startswith("/") else f"/{path}")))
    return out


def proxy_server(ctx: Ctx, clients: Clients, cluster_id: str, service: str, rest: str, port: int) -> Response:
    prefix = f"/api/cluster/{cluster_id}/proxy/server/{service}"
    query = urlencode([(k, v) for k, v in parse_qsl(ctx.req.target.partition("?")[2], keep_blank_values=True)
                       if k not in ("to", "path", "scheme")])
    api = urlsplit(clients.server)
    path = f"{api.path.rstrip('/')}/api/v1/namespaces/default/services/http:{service}:{port}/proxy{rest}"
    headers = _headers(ctx, prefix, service)
    headers.setdefault("authorization", f"Bearer {clients.token}")  # only when the caller sent none
    hostport = api.netloc
    invalid = next((k for k, v in headers.items() if any(c in v for c in "\r\n\0")), None)
    if invalid is not None:  # Go's transport refuses before dialing, naming the header, never its value
        return text(502, f'upstream error: net/http: invalid header field value for "{_canonical(invalid)}"')
    conn: http.client.HTTPConnection
    try:
        if api.scheme == "https":
            conn = http.client.HTTPSConnection(api.hostname or "", api.port or 443, timeout=_TIMEOUT,
                                               context=_tls_context(clients))
        else:
            conn = http.client.HTTPConnection(api.hostname or "", api.port or 80, timeout=_TIMEOUT)
        try:
            conn.request(ctx.req.method, path + (f"?{query}" if query else ""), body=ctx.req.body or None,
                         headers=headers)
            upstream = conn.getresponse()
            body = upstream.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return text(502, f"upstream error: {_go_error(exc, hostport)}")
    return Response(upstream.status, body, upstream.getheader("Content-Type"), _rewrite(upstream, prefix))

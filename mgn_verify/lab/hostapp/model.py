"""Host App simulator plumbing: request context, response helpers, kubeconfig parsing.

Split from :mod:`mgn_verify.lab.hostapp` to keep each module small. Content types follow
guildnet-host-app.md §1.6: routes the real app writes without a Content-Type get Go's sniffed
``text/plain; charset=utf-8`` even though the body is JSON.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

from mgn_verify.lab._httpserver import Request, Response

__all__ = [
    "SNIFFED",
    "Clients",
    "Ctx",
    "RequestRecord",
    "empty",
    "go_string",
    "js",
    "json_err",
    "parse_kubeconfig",
    "rfc3339",
    "rfc3339nano",
    "text",
]

SNIFFED = "text/plain; charset=utf-8"
JSON = "application/json"
REMOTE_PEER = "100.64.0.7"  # a tailnet address: what a request over tsnet :443 looks like


class RequestRecord(NamedTuple):
    """One request the Host App simulator answered. ``path`` includes the query string."""

    method: str
    path: str
    status: int


@dataclass
class Ctx:
    """Per-request data the handlers need besides the request itself."""

    req: Request
    request_id: str
    remote: bool  # the "non-loopback peer" toggle

    @property
    def loopback(self) -> bool:
        if self.remote:
            return False
        try:
            return ipaddress.ip_address(self.req.client_host).is_loopback
        except ValueError:
            return False

    def body_object(self) -> dict[str, Any]:
        """The JSON body as an object; like Go's ignored decode errors, junk becomes ``{}``."""
        try:
            body = self.req.json()
        except (ValueError, UnicodeDecodeError):
            return {}
        return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class Clients:
    """What building kube clients from a stored kubeconfig yields (no contact with the server)."""

    server: str
    token: str
    ca_data: str = ""  # certificate-authority-data (base64 PEM)
    ca_file: str = ""  # certificate-authority (a path)
    insecure: bool = False  # insecure-skip-tls-verify


def new_request_id() -> str:
    return secrets.token_hex(16)


def js(status: int, obj: Any, *, sniffed: bool = False) -> Response:
    # Go's json.Encoder appends a newline; keep it, clients see the same bytes.
    return Response(status, (json.dumps(obj) + "\n").encode(), SNIFFED if sniffed else JSON)


def json_err(ctx: Ctx, status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": ctx.request_id}
    if details is not None:
        body["details"] = details
    return js(status, body)


def text(status: int, message: str) -> Response:
    """Go's ``http.Error``: plain text plus newline."""
    return Response(status, f"{message}\n".encode(), SNIFFED, [("X-Content-Type-Options", "nosniff")])


def empty(status: int) -> Response:
    return Response(status)


def not_found_page() -> Response:
    return text(404, "404 page not found")


def rfc3339(when: _dt.datetime | None = None) -> str:
    return (when or _dt.datetime.now(_dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339nano(when: _dt.datetime | None = None) -> str:
    moment = when or _dt.datetime.now(_dt.UTC)
    frac = f"{moment.microsecond:06d}000".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def go_string(value: Any) -> str:
    """``fmt.Sprint`` of a decoded JSON value, enough for names: nil -> ``<nil>``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _go_yaml_error(exc: Exception) -> str:
    """A PyYAML error as go-yaml words it: the line and the problem, never the text itself."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "could not parse the document"
    if mark is None:
        return f"yaml: {problem}"
    # go-yaml counts a scanner error's line one further than a parser error's.
    line = int(mark.line) + (1 if type(exc).__name__ == "ScannerError" else 0)
    return f"yaml: line {max(line, 1)}: {problem}"


def parse_kubeconfig(raw: str) -> Clients:
    """Validate a kubeconfig like client-go's loader; raise ValueError with its complaint."""
    import yaml  # project dependency; only needed when a kubeconfig is actually posted

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        # go-yaml's wording (``yaml: line N: problem``): PyYAML's own message quotes the offending
        # line, which in a kubeconfig may well be the token.
        raise ValueError(f"couldn't get version/kind; json parse error: {_go_yaml_error(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError("invalid configuration: no configuration has been provided")
    current = data.get("current-context")
    contexts = {
        c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)
    }
    clusters = {
        c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or [] if isinstance(c, dict)
    }
    users = {u.get("name"): u.get("user") or {} for u in data.get("users") or [] if isinstance(u, dict)}
    if not current or current not in contexts:
        raise ValueError(
            f"invalid configuration: context was not found for specified context: {current or ''}"
        )
    context = contexts[current]
    cluster = clusters.get(context.get("cluster"))
    if not cluster or not cluster.get("server"):
        raise ValueError("invalid configuration: no server found for cluster")
    user = users.get(context.get("user")) or {}
    return Clients(server=str(cluster["server"]).rstrip("/"), token=str(user.get("token") or ""),
                   ca_data=str(cluster.get("certificate-authority-data") or ""),
                   ca_file=str(cluster.get("certificate-authority") or ""),
                   insecure=bool(cluster.get("insecure-skip-tls-verify")))

"""The Host App's error answers as typed, one-line, secret-free errors; the loopback rule; the
secrets of a kubeconfig. Split from :mod:`mgn_verify.clients.hostapp` (which re-exports the
public names).

Status → type: 401/403 :class:`~mgn_verify.AuthError`, 404 ``NotFoundError``, 409/422
``ConflictError``, 429/502/503/504 ``UnavailableError`` (``503 no_k8s_clients``:
:class:`DegradedError`), 500 and other 5xx ``ServerError``, anything else ``ApiError``. Each
message names the method and path, then the Host App's code and what it means for the user;
the whole text goes through the client's redactor before it is cut to a bound.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mgn_verify._exceptions import (
    ApiError,
    AuthError,
    ClientError,
    ConflictError,
    NotFoundError,
    ServerError,
    UnavailableError,
)

from ._http import retry_after_seconds

if TYPE_CHECKING:
    import httpx

__all__ = ["COMPONENT", "DegradedError", "http_error", "is_loopback_url", "kubeconfig_secrets", "loopback_note"]

COMPONENT = "hostapp"
LOOPBACK_RULE = "mutations are accepted only from a loopback peer"

#: What the Host App's codes mean for the user (guildnet-host-app.md §2.3, §2.6, §2.9).
_MEANING = {
    "cluster_connect": "the Host App could not connect to the cluster with this kubeconfig",
    "cluster_client": "the Host App could not build a Kubernetes client from this kubeconfig",
    "cluster_rdb": "the Host App could not reach the cluster's RethinkDB (Service rethinkdb)",
    "missing_kubeconfig": "the Host App got an empty kubeconfig",
    "bad_kubeconfig": "the Host App could not parse the kubeconfig",
    "create_failed": "the Host App could not create the workspace",
    "no_k8s_clients": "the Host App has no Kubernetes clients for this cluster (no usable kubeconfig stored: "
                      "attach one, e.g. `mgn cluster apply`)",
    "no_pods": "the workspace has no pods (not created, not scheduled yet, or deleted)",
}
#: Bootstrap rolls back on these: say so, the user may fear a half-registered cluster.
_ROLLED_BACK = frozenset({"cluster_connect", "cluster_client", "cluster_rdb"})


class DegradedError(UnavailableError):
    """The Host App has no kube clients for the cluster: a GET answered ``200 []`` where an
    object was expected, or a mutation answered ``503 no_k8s_clients``."""


# -- loopback ---------------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is loopback: 127.0.0.0/8, ::1 or ``localhost``."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # "https://[::1": not a URL (the transport says so when it is used)
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_note(base_url: str) -> str | None:
    """A warning for a command that mutates through a Host App at a non-loopback URL (None when
    it is loopback): the served Host App answers such mutations ``401 unauthorized``."""
    if is_loopback_url(base_url):
        return None
    return (f"the Host App at {base_url} is not a loopback address, and the Host App accepts mutations "
            f"(POST/PUT/DELETE) only from a loopback peer: {_LOOPBACK_FIX}")


_LOOPBACK_FIX = ("run mgn on the Host App's host with api.base_url=https://127.0.0.1:8090, or through an SSH "
                 "tunnel (ssh -L 8090:127.0.0.1:8090 HOST)")


# -- kubeconfig secrets ------------------------------------------------------------------------

_SECRET_KEYS = ("token", "password", "client-key-data", "id-token", "refresh-token", "client-secret",
                "access-token")
_SECRET_LINE = re.compile(r"^\s*-?\s*(?:" + "|".join(map(re.escape, _SECRET_KEYS)) + r")\s*:\s*['\"]?([^'\"\s#]+)",
                          re.MULTILINE)

_YAML_LITERALS = frozenset({"null", "~", "true", "false", "yes", "no"})


def kubeconfig_secrets(text: str) -> list[str]:
    """The secret values of a kubeconfig (tokens, passwords, client keys, also base64-decoded),
    found line by line so a kubeconfig that does not parse is covered too; plus the whole text."""
    found = [text] if text.strip() else []
    for value in _SECRET_LINE.findall(text):
        if value.lower() in _YAML_LITERALS:  # `password: null` hides no secret, and "null" is everywhere
            continue
        found.append(value)
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, ValueError):
            continue
        found.append(decoded)
        found.extend(line for line in decoded.splitlines() if len(line) >= 16 and "-----" not in line)
    return found


# -- errors ------------------------------------------------------------------------------------


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _body(response: httpx.Response) -> tuple[str, str, Any]:
    """(code, message, details) of a structured error ``{code, message, details}``, else
    ("", the plain-text body, None)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("code" in body or "message" in body):
        return str(body.get("code") or ""), str(body.get("message") or ""), body.get("details")
    return "", response.text.strip(), None


def _details_text(details: Any) -> tuple[str, str]:
    """(text, reason) of a ``details``: a string, or a Kubernetes status ``{message, reason}``."""
    if isinstance(details, str):
        return details, ""
    if isinstance(details, dict):
        reason = str(details.get("reason") or "")
        message = str(details.get("message") or "")
        return (f"Kubernetes said {reason}: {message}" if reason else message), reason
    return "", ""


def _explain(code: str, message: str, details: Any) -> tuple[str, str]:
    """(what it means, Kubernetes reason) for a structured error."""
    said, reason = _details_text(details)
    meaning = _MEANING.get(code)
    if meaning is None:
        text = f"{message} ({said})" if said and message else (message or said)
    else:
        text = f"{meaning}: {said}" if said else meaning
    if code in _ROLLED_BACK:
        text += "; nothing was registered (the Host App rolled back)"
    return text, reason


def http_error(method: str, path: str, response: httpx.Response, *, base_url: str,
               redact: Callable[[str], str]) -> ClientError:
    """The typed error for ``response`` (an unexpected status) to ``method path``."""
    status = response.status_code
    code, message, details = _body(response)
    explained, reason = _explain(code, message, details)
    said = ": ".join(p for p in (code, explained) if p) or response.reason_phrase or "no body"
    # Redacted, then cut: a cut must never leave half a secret (the margin bounds the work).
    text = _excerpt(redact(f"{method} {path}: HTTP {status} {said}"[:600 + 4096]), 600)
    safe_details = _redact_data(details, redact)
    if status in (401, 403):
        return AuthError(text + _auth_hint(status, message, base_url), component=COMPONENT, target=base_url)
    kwargs: dict[str, Any] = {"component": COMPONENT, "target": base_url, "status": status, "code": code,
                              "details": safe_details}
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status in (409, 422):
        return ConflictError(text, **kwargs)
    if status in (429, 502, 503, 504):
        after = retry_after_seconds(response.headers.get("retry-after"))
        if after is not None:
            text += f" (retry after {after:g} s)"
        elif not code:  # a gateway's or a starting server's plain answer, already retried
            text += " (the Host App, or a proxy in front of it, is not available: try again later)"
        cls = DegradedError if status == 503 and code == "no_k8s_clients" else UnavailableError
        return cls(text, retry_after=after, **kwargs)
    if status >= 500:
        return ServerError(text, reason=reason, **kwargs)
    return ApiError(text, **kwargs)


def _auth_hint(status: int, message: str, base_url: str) -> str:
    if status != 401 or message.strip() != "unauthorized":
        return " (the credentials were rejected)" if status == 401 else ""
    if not is_loopback_url(base_url):
        return f" ({LOOPBACK_RULE}, and {base_url} is not a loopback address: {_LOOPBACK_FIX})"
    return (f" ({LOOPBACK_RULE}, and it saw this request come from another address: "
            "is a proxy or tunnel between mgn and the Host App?)")


def _redact_data(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _redact_data(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_data(v, redact) for v in value]
    return value

"""A small HTTPS transport shared by the HTTP clients: verified TLS, retries, typed errors.

``Transport.request`` sends one request with ``httpx`` (imported when the transport is built)
and turns every failure into the framework's ``ClientError`` tree:

- no answer (refused, timeout, DNS, reset) → :class:`Unreachable` with ``reason``;
- a certificate that does not verify → :class:`TlsVerificationError` (never retried);
- an answer is returned as is: status handling is the caller's (each API has its own shapes).

Idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) are retried with exponential backoff on
connection errors (refused, reset, connect timeout) and on 502/503/504; POST never is, and a
read timeout never is either (the server got the request and is slow: asking again only
doubles the wait). Headers (and so the bearer token) are
never put in a message.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ClientError, UnreachableError

if TYPE_CHECKING:
    import httpx

__all__ = ["IDEMPOTENT", "RETRY_STATUSES", "TlsVerificationError", "Transport", "Unreachable", "verifying_context"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_REASONS = frozenset({"refused", "connect-timeout", "reset", "other"})
RETRY_STATUSES = frozenset({502, 503, 504})


class Unreachable(UnreachableError):
    """No HTTP answer. ``reason``: ``refused``, ``connect-timeout``, ``timeout`` (no response in
    time), ``dns``, ``reset``, ``tls``, ``other``."""

    def __init__(self, message: str, *, component: str, target: str = "", reason: str = "other") -> None:
        super().__init__(message, component=component, target=target)
        self.reason = reason


class TlsVerificationError(Unreachable):
    """The server's certificate did not verify (expired, unknown CA, wrong name)."""

    def __init__(self, message: str, *, component: str, target: str = "", verify_code: int | None = None) -> None:
        super().__init__(message, component=component, target=target, reason="tls")
        self.verify_code = verify_code

    @property
    def expired(self) -> bool:
        return self.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED


def verifying_context(ca_bundle: str | None, *, component: str = "", setting: str = "api.ca_bundle"
                      ) -> ssl.SSLContext:
    """Always verifying: the system trust store plus ``ca_bundle`` as an extra anchor. A bundle
    that cannot be read is a ``ClientError`` naming the setting and the file."""
    ctx = ssl.create_default_context()
    if ca_bundle:
        path = Path(ca_bundle).expanduser()
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or "not a PEM certificate bundle"
            raise ClientError(f"{setting} {path}: {reason}", component=component, target=str(path)) from None
    return ctx


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(exc: BaseException) -> tuple[str, str]:
    """(reason, short text) for a transport error, from its chain of causes."""
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if "refused" in low:
        return "refused", "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low:
        return "dns", f"name resolution failed ({text})"
    if "reset" in low or "disconnected" in low or "closed" in low:
        return "reset", f"the connection was closed without a response ({text})"
    return "other", text


@dataclass
class Transport:
    """``base_url`` plus verified TLS, timeouts and the retry policy of one client."""

    base_url: str
    component: str
    ca_bundle: str | None = None
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.2
    headers: Mapping[str, str] | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        import httpx  # lazy: only a run that talks to this component pays for it

        self.base_url = self.base_url.rstrip("/")
        https = self.base_url.startswith("https")
        verify: ssl.SSLContext | bool = verifying_context(self.ca_bundle, component=self.component) if https else True
        self._client = httpx.Client(
            base_url=self.base_url, verify=verify, timeout=self.timeout, headers=dict(self.headers or {}),
        )

    def __repr__(self) -> str:  # never the headers: they carry the token
        return f"Transport({self.base_url!r}, component={self.component!r})"

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, json: Any = None, timeout: float | None = None,
                retries: int | None = None) -> httpx.Response:
        """The answer to ``method path``; retried (idempotent only) on no answer or 502/503/504."""
        attempts = 1 + (self.retries if retries is None else retries) if method.upper() in IDEMPOTENT else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, path, json, timeout)
            except Unreachable as exc:
                # A certificate does not get better by asking again, nor a slow server faster.
                if last or exc.reason not in RETRY_REASONS:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or last or not _transient(response):
                    return response
            self.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    def _send(self, method: str, path: str, body: Any, timeout: float | None) -> httpx.Response:
        import httpx

        url = f"{self.base_url}{path}"
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            return self._client.request(method, path, json=body, **kwargs)
        except httpx.TimeoutException as exc:
            limit = timeout if timeout is not None else self.timeout
            connect = isinstance(exc, httpx.ConnectTimeout)
            what = "could not connect" if connect else "no answer"
            raise Unreachable(f"{method} {url}: {what} within {limit:g} s", component=self.component,
                              target=self.base_url, reason="connect-timeout" if connect else "timeout") from None
        except httpx.TransportError as exc:
            cert = _cert_error(exc)
            if cert is not None:
                raise TlsVerificationError(
                    f"{url}: TLS verification failed: {cert.verify_message or cert.reason}",
                    component=self.component, target=self.base_url, verify_code=cert.verify_code,
                ) from None
            if isinstance(_root(exc), ssl.SSLError):
                raise Unreachable(f"{url}: TLS handshake failed: {_root(exc)}", component=self.component,
                                  target=self.base_url, reason="tls") from None
            reason, text = _reason(exc)
            raise Unreachable(f"cannot connect to {url}: {text}", component=self.component,
                              target=self.base_url, reason=reason) from None


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def _transient(response: httpx.Response) -> bool:
    """A 503 that names a definite cause (the Host App's ``no_k8s_clients``) is an answer, not a
    hiccup: retrying it only wastes time."""
    if response.status_code != 503:
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("code") == "no_k8s_clients")

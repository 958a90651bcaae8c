"""A small HTTPS transport shared by the HTTP clients: verified TLS, retries, typed errors.

``Transport.request`` sends one request with ``httpx`` (imported when the transport is built)
and turns every failure into the framework's ``ClientError`` tree:

- no answer (refused, reset, DNS) → :class:`Unreachable` with ``reason``; no answer in time →
  :class:`TimedOut` (also a :class:`~mgn_verify._exceptions.ClientTimeoutError`); a base URL
  that is not one (bad port, no ``https://``) → ``Unreachable`` with reason ``url``, never retried;
- a certificate that does not verify → :class:`TlsVerificationError` (never retried);
- an answer is returned as is: status handling is the caller's (each API has its own shapes).

The retry policy (:class:`RetryPolicy`) retries only idempotent requests (GET, HEAD, OPTIONS,
PUT, DELETE, or a call its client declares idempotent, such as a POST that replaces a value)
and only when asking again is safe and useful:

- no connection or a connection closed without a response (refused, reset, remote
  disconnected, connect timeout) — never a read timeout (the server got the request and is
  slow: asking again only doubles the wait), never a TLS or DNS failure;
- 502/503/504 (a gateway or a server not ready), except a 503 that names a definite cause (the
  Host App's ``no_k8s_clients``), and 429, honouring ``Retry-After`` up to
  ``retry_after_max`` (a longer wait is returned at once: the caller reports it).

Waits are exponential with full jitter (uniform in ``[0, min(max_backoff, backoff·2^n)]``), so
clients that failed together do not retry together. A non-idempotent POST (a create) is never
repeated: its first answer, or error, is final. Headers (and so the bearer token) are never put
in a message, nor the password of a base URL (``https://user:pw@host``: shown as ``***``).
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ClientError, ClientTimeoutError, UnreachableError

if TYPE_CHECKING:
    import httpx

__all__ = ["IDEMPOTENT", "RETRY_STATUSES", "RetryPolicy", "TimedOut", "TlsVerificationError", "Transport",
           "Unreachable", "retry_after_seconds", "shown_url", "verifying_context"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_REASONS = frozenset({"refused", "connect-timeout", "reset", "other"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


#: ``scheme://userinfo@``: what ``shown_url`` masks (a password, or a token used as user name).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def shown_url(url: str) -> str:
    """``url`` as messages and reprs show it: any userinfo (``user:password@``) is ``***@``."""
    return _USERINFO.sub(r"\1***@", url)


class Unreachable(UnreachableError):
    """No HTTP answer. ``reason``: ``refused``, ``connect-timeout``, ``timeout`` (no response in
    time), ``dns``, ``reset``, ``tls``, ``url`` (the URL is not usable: never retried), ``other``."""

    def __init__(self, message: str, *, component: str, target: str = "", reason: str = "other") -> None:
        super().__init__(message, component=component, target=target)
        self.reason = reason


class TimedOut(Unreachable, ClientTimeoutError):
    """No answer in time: ``reason`` is ``connect-timeout`` (retried when idempotent) or
    ``timeout`` (the request was sent; never retried)."""


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
    root = _root(exc)
    if isinstance(root, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(root, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "reset", f"the connection was reset without a response ({text})"
    if "refused" in low:
        return "refused", "connection refused"
    if isinstance(root, socket.gaierror) or "name or service not known" in low or "nodename nor servname" in low \
            or "getaddrinfo" in low or "name resolution" in low:
        return "dns", f"name resolution failed ({text})"
    if "reset" in low or "disconnected" in low or "closed" in low:
        return "reset", f"the connection was closed without a response ({text})"
    return "other", text


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: ``retries`` more attempts after the first, waits drawn
    with full jitter from ``[0, min(max_backoff, backoff * 2**n)]``, a ``Retry-After`` of at
    most ``retry_after_max`` seconds honoured (waited at least that long)."""

    retries: int = 2
    backoff: float = 0.2
    max_backoff: float = 5.0
    retry_after_max: float = 10.0
    statuses: frozenset[int] = RETRY_STATUSES

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The jittered wait before retry number ``attempt + 1`` (attempt counts from 0)."""
        return draw() * min(self.max_backoff, self.backoff * 2.0 ** attempt)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or
    unreadable (a negative or past value is 0)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf" or "nan" is no wait anyone can honour
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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
    max_backoff: float = 5.0
    retry_after_max: float = 10.0
    #: Where the jitter comes from (``random.random``); a test may pin it.
    draw: Callable[[], float] = field(default=random.random, repr=False)
    #: Use ``HTTPS_PROXY``/``NO_PROXY`` (and ``.netrc``) from the environment; a client of a
    #: loopback-only API turns it off: through a proxy its calls would no longer be loopback.
    trust_env: bool = True
    #: What to do when the certificate's issuer is not trusted (e.g. which CA setting to set),
    #: appended to that error once, here, so no caller needs to add it.
    tls_fix: str = ""

    def __post_init__(self) -> None:
        import httpx  # lazy: only a run that talks to this component pays for it

        self.base_url = self.base_url.rstrip("/")
        self.shown = shown_url(self.base_url)
        https = self.base_url.startswith("https")
        verify: ssl.SSLContext | bool = verifying_context(self.ca_bundle, component=self.component) if https else True
        try:
            self._client = httpx.Client(
                base_url=self.base_url, verify=verify, timeout=self.timeout, headers=dict(self.headers or {}),
                trust_env=self.trust_env,
            )
        except httpx.InvalidURL as exc:  # a bad port or host: a config error, said in one line
            raise self._bad_url(exc) from None

    def __repr__(self) -> str:  # never the headers (they carry the token), nor a URL's password
        return f"Transport({self.shown!r}, component={self.component!r})"

    def _bad_url(self, exc: BaseException) -> Unreachable:
        import httpx

        why = "it needs http:// or https://" if isinstance(exc, httpx.UnsupportedProtocol) else str(exc)
        return Unreachable(f"invalid URL {self.shown!r} for {self.component}: {why}", component=self.component,
                           target=self.shown, reason="url")

    def close(self) -> None:
        self._client.close()

    def policy(self, retries: int | None = None, statuses: Collection[int] | None = None) -> RetryPolicy:
        return RetryPolicy(self.retries if retries is None else retries, self.backoff, self.max_backoff,
                           self.retry_after_max, RETRY_STATUSES if statuses is None else frozenset(statuses))

    def request(self, method: str, path: str, *, json: Any = None, timeout: float | None = None,
                retries: int | None = None, idempotent: bool | None = None,
                retry_statuses: Collection[int] | None = None, anonymous: bool = False) -> httpx.Response:
        """The answer to ``method path``. Retried (see the module docs) only when idempotent:
        by its method, or ``idempotent=True`` for a call that is so whatever its method (a POST
        that replaces a value). ``retry_statuses`` narrows the statuses worth retrying (``()``:
        only connection failures, for a caller that wants every answer as is). ``anonymous``
        leaves out the client's ``Authorization`` header (for a request a proxy passes on)."""
        policy = self.policy(retries, retry_statuses)
        safe = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        attempts = 1 + max(policy.retries, 0) if safe else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, path, json, timeout, anonymous)
            except Unreachable as exc:
                # A certificate does not get better by asking again, nor a slow server faster.
                if last or exc.reason not in RETRY_REASONS:
                    raise
                wait = policy.delay(attempt, self.draw)
            else:
                if last or response.status_code not in policy.statuses or not _transient(response):
                    return response
                wait = policy.delay(attempt, self.draw)
                asked = retry_after_seconds(response.headers.get("retry-after"))
                if asked is not None:
                    if asked > policy.retry_after_max:
                        return response  # too long to wait here: the caller reports Retry-After
                    wait = max(wait, asked)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    def _send(self, method: str, path: str, body: Any, timeout: float | None,
              anonymous: bool = False) -> httpx.Response:
        import httpx

        url = f"{self.shown}{path}"
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            request = self._client.build_request(method, path, json=body, **kwargs)
            if anonymous:
                request.headers.pop("Authorization", None)
            return self._client.send(request)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise self._bad_url(exc) from None
        except httpx.TimeoutException as exc:
            limit = timeout if timeout is not None else self.timeout
            connect = isinstance(exc, httpx.ConnectTimeout)
            what = "could not connect" if connect else "no answer"
            raise TimedOut(f"{method} {url}: {what} within {limit:g} s", component=self.component,
                           target=self.shown, reason="connect-timeout" if connect else "timeout") from None
        except httpx.TransportError as exc:
            cert = _cert_error(exc)
            if cert is not None:
                fix = f"; fix: {self.tls_fix}" if self.tls_fix and cert.verify_code in _UNTRUSTED_ISSUER else ""
                raise TlsVerificationError(
                    f"{url}: TLS verification failed: {cert.verify_message or cert.reason}{fix}",
                    component=self.component, target=self.shown, verify_code=cert.verify_code,
                ) from None
            if isinstance(_root(exc), ssl.SSLError):
                raise Unreachable(f"{url}: TLS handshake failed: {_root(exc)}", component=self.component,
                                  target=self.shown, reason="tls") from None
            reason, text = _reason(exc)
            # A reset happened after connecting: the message says so rather than "cannot connect".
            message = f"{method} {url}: {text}" if reason == "reset" else f"cannot connect to {url}: {text}"
            raise Unreachable(message, component=self.component, target=self.shown, reason=reason) from None


#: OpenSSL's verify codes for "the issuer is not trusted" (what a CA bundle fixes): unable to get
#: issuer certificate (2), self-signed (18, 19), unable to get local issuer (20), cannot verify
#: the leaf's signature (21). Not an expired or misnamed certificate: another CA does not help.
_UNTRUSTED_ISSUER = frozenset({2, 18, 19, 20, 21})


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

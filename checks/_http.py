"""HTTP(S) GETs for the network checks: one deadline for the whole request, and no TLS downgrade.

httpx's ``timeout`` bounds each operation (connect, every read, ...), so a server that trickles
its body, or a chain of slow redirects, can take many times the timeout and still "answer". Here
the timeout is one deadline for the whole request: each hop's operations get only the time left,
the body is read chunk by chunk against it, and a response completed after it is a failure.
Redirects are followed (at most ``MAX_REDIRECTS``), never from https to http: a page or a
manifest fetched over plain HTTP after starting on HTTPS proves nothing about the HTTPS service.

httpx is imported when a ``GuardedClient`` is built, never at module import.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._tls import ssl_context

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_REDIRECTS", "GuardedClient", "HttpFailure", "shown_url"]

MAX_REDIRECTS = 5


class HttpFailure(Exception):
    """``kind``: downgrade (https → http redirect), timeout (the deadline passed), redirects (too many).
    ``detail``: what a timeout got before the deadline (" (HTTP 200 headers received, ...)") or ""."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message + detail)
        self.kind, self.detail = kind, detail


def shown_url(url: httpx.URL | str) -> str:
    """scheme://host[:port]/path: no userinfo and no query, where signed URLs carry credentials."""
    import httpx

    url = httpx.URL(url)
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


class GuardedClient:
    """An httpx client for GETs with an overall deadline of ``timeout`` seconds per request,
    verified TLS (``ca_bundle`` or the system store) and https-only redirects. Not shared
    between threads: each check builds its own."""

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        import httpx

        self.timeout = timeout
        self._url, self._deadline = "", 0.0
        self._client = httpx.Client(
            verify=ssl_context(ca_bundle),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            event_hooks={"request": [self._before_hop], "response": [self._after_hop]},
        )

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._client.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """The complete response (body read) within the deadline. Raises ``HttpFailure``, or the
        httpx error of a request that got no answer (``httpx.ConnectTimeout`` for a connect
        that did not finish in the time left)."""
        import httpx

        self._url, self._deadline = url, time.monotonic() + self.timeout
        try:
            with self._client.stream("GET", url, **kwargs) as response:
                body = self._read(response)
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
            raise self._late() from None
        except httpx.TooManyRedirects:
            raise HttpFailure("redirects", f"{shown_url(url)}: more than {MAX_REDIRECTS} redirects") from None
        # A fresh response holding the raw body: httpx decodes it (gzip ...) as for a plain get().
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=response.request,
            extensions=response.extensions, history=response.history,
        )

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        return left

    def _late(self, detail: str = "") -> HttpFailure:
        where = shown_url(self._url)
        return HttpFailure("timeout", f"no complete response from {where} within {self.timeout:g} s", detail)

    def _read(self, response: httpx.Response) -> bytes:
        """The raw body, chunk by chunk against the deadline (each read alone is bounded too)."""
        import httpx

        incomplete = f" (HTTP {response.status_code} headers received, body incomplete)"
        chunks = []
        try:
            for chunk in response.iter_raw():
                chunks.append(chunk)
                if time.monotonic() > self._deadline:
                    raise self._late(incomplete)
        except httpx.ReadTimeout:
            raise self._late(incomplete) from None
        return b"".join(chunks)

    def _before_hop(self, request: httpx.Request) -> None:
        """Every operation of this hop (connect, TLS, each read) gets at most the time left."""
        import httpx

        request.extensions["timeout"] = httpx.Timeout(self._left()).as_dict()

    def _after_hop(self, response: httpx.Response) -> None:
        if not response.has_redirect_location:
            return
        source = response.request.url
        target = source.join(response.headers["location"])
        if source.scheme == "https" and target.scheme == "http":
            raise HttpFailure(
                "downgrade", f"refusing TLS downgrade: {shown_url(source)} redirected to {shown_url(target)}"
            )

"""``network.registry.pull``: does the registry serve the manifest of each image GuildNet needs?

A real OCI distribution API conversation: ``GET https://<registry>/v2/<name>/manifests/<ref>``
with the OCI and Docker manifest media types in ``Accept``; a ``401`` with a ``Bearer``
challenge is answered the standard way (GET the realm with service and scope, with basic
auth when ``network.registry_auth`` has credentials for the registry, then retry with the
token). TLS is always verified (``network.ca_bundle`` adds a trust anchor). httpx is imported
inside the check only. Credentials and tokens are marked secret and never put in a message.
"""

from __future__ import annotations

import hashlib
import platform
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mgn_verify import Config, check, parametrize, warn

from ._common import nothing_configured
from ._http import GuardedClient, HttpFailure, shown_url
from ._tls import _verify_failure, fetch_certificate

if TYPE_CHECKING:
    import httpx

__all__ = ["ImageRef", "RegistryFailure", "add_settings", "mark_secrets", "parse_image", "registry_check"]

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def add_settings(add: Callable[..., None]) -> None:
    """Declared from ``network.mgn_add_settings``."""
    add(
        "network.images",
        [],
        help="images whose manifests the registry must serve ('ghcr.io/org/app:tag', "
        "'nginx:1.27', 'reg:5000/x@sha256:…'); empty: network.registry.pull skipped",
    )
    add(
        "network.registry_auth",
        {},
        secret=True,
        help="credentials per registry for the token/basic auth flow: {registry: {username, "
        "password}} (registry as in the image name, docker.io for Docker Hub); never shown",
    )


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # as written (docker.io for Docker Hub)
    host: str  # host[:port] the API is served on
    repository: str
    reference: str  # tag or digest

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


def parse_image(text: str) -> ImageRef:
    """Docker reference rules: a first component with '.', ':' or 'localhost' is a registry,
    otherwise Docker Hub (with 'library/' for official images); the tag defaults to latest."""
    name, _, digest = text.strip().partition("@")
    slash = name.find("/")
    first = name[:slash] if slash > 0 else ""
    if first and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, name[slash + 1 :]
    else:
        registry, rest = "docker.io", name
    tag = ""
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, _, tag = rest.rpartition(":")
    if registry in _DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    if not rest or not re.fullmatch(r"[a-z0-9]+(?:[._/-]+[a-z0-9]+)*", rest):
        raise ValueError(f"{text!r} is not a valid image reference")
    host = "registry-1.docker.io" if registry in _DOCKER_HUB else registry
    return ImageRef(registry, host, rest, digest or tag or "latest")


class RegistryFailure(Exception):
    """``kind``: unreachable, tls, auth, unknown, error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _credentials(config: Config, ref: ImageRef) -> tuple[str, str] | None:
    wanted = {ref.registry, ref.host, *(_DOCKER_HUB if ref.registry in _DOCKER_HUB else ())}
    for key, value in (config["network.registry_auth"] or {}).items():
        host = urlsplit(key).netloc if "://" in key else key.rstrip("/")
        if host in wanted and isinstance(value, dict):
            return str(value.get("username", "")), str(value.get("password", ""))
    return None


def mark_secrets(config: Config) -> None:
    """Every registry password is a secret of the run (called from ``mgn_configure``)."""
    for value in (config["network.registry_auth"] or {}).values():
        if isinstance(value, dict) and value.get("password"):
            config.mark_secret(str(value["password"]))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _transport_failure(exc: Exception, url: str, timeout: float, what: str) -> RegistryFailure:
    """A named failure for a request that got no HTTP answer (``what``: registry, token service)."""
    import httpx

    parts = urlsplit(url)
    host, port, where = parts.hostname or "", parts.port or 443, parts.netloc
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            why = _verify_failure(item, fetch_certificate(host, port, host, timeout), host)
            return RegistryFailure("tls", f"TLS failure talking to {what} {where}: {why}")
        if isinstance(item, ssl.SSLError):
            return RegistryFailure("tls", f"TLS failure talking to {what} {where}: handshake failed ({item.reason})")
    if isinstance(exc, httpx.ConnectTimeout):
        return RegistryFailure("unreachable", f"{what} {where} unreachable: no answer within {timeout:g} s")
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return RegistryFailure("unreachable", f"{what} {where} unreachable: connection refused")
        if isinstance(item, socket.gaierror):
            return RegistryFailure("unreachable", f"{what} {where} unreachable: cannot resolve {host}")
    return RegistryFailure("unreachable", f"{what} {where} unreachable: {exc}")


def _get(client: GuardedClient, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """One complete GET within ``network.timeout`` (redirects included, never to plain http)."""
    import httpx

    try:
        return client.get(url, **kwargs)
    except HttpFailure as exc:
        if exc.kind == "downgrade":
            raise RegistryFailure("tls", str(exc)) from None
        if exc.kind == "timeout":
            where, limit = urlsplit(url).netloc, client.timeout
            raise RegistryFailure(
                "unreachable", f"{what} {where} sent no complete response within {limit:g} s{exc.detail}"
            ) from None
        raise RegistryFailure("error", f"{what}: {exc}") from None
    except httpx.TransportError as exc:
        raise _transport_failure(exc, url, client.timeout, what) from None


def _challenge(response: httpx.Response) -> tuple[str, dict[str, str]]:
    header = response.headers.get("www-authenticate", "")
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _errors(response: httpx.Response) -> list[tuple[str, str]]:
    """(code, message) of an OCI error body ({"errors": [{"code", "message"}]})."""
    try:
        body = response.json()
        return [(str(e.get("code", "")), str(e.get("message", ""))) for e in body.get("errors", [])]
    except (ValueError, AttributeError, TypeError):
        return []


def _token(
    client: GuardedClient, params: dict[str, str], ref: ImageRef, creds: tuple[str, str] | None, config: Config
) -> str:
    realm = params.get("realm", "")
    if realm.startswith("http://"):  # the token (and any credentials) would cross the network in clear
        raise RegistryFailure(
            "tls", f"refusing TLS downgrade: registry {ref.host} sends token requests to {shown_url(realm)}"
        )
    if not realm.startswith("https://"):
        raise RegistryFailure("error", f"{ref.host} sent a Bearer challenge without a usable realm ({realm!r})")
    query = {k: v for k, v in params.items() if k in ("service", "scope")}
    query.setdefault("scope", f"repository:{ref.repository}:pull")
    who = f"user {creds[0]!r}" if creds else "anonymous"
    reply = _get(client, realm, "token service", params=query, auth=creds)
    if reply.status_code in (401, 403):
        raise RegistryFailure(
            "auth",
            f"auth denied: token service {urlsplit(realm).netloc} refused {who} for {query['scope']} "
            f"(HTTP {reply.status_code}{'; set network.registry_auth' if not creds else ''})",
        )
    if reply.status_code != 200:
        raise RegistryFailure("error", f"token service {realm} answered HTTP {reply.status_code}")
    try:
        token = reply.json().get("token") or reply.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not token:
        raise RegistryFailure("error", f"token service {realm} answered without a token")
    config.mark_secret(str(token))
    return str(token)


def probe(config: Config, ref: ImageRef) -> tuple[httpx.Response, str]:
    """The manifest response (200) and how access was obtained; raises RegistryFailure. Each of
    its requests (manifest, token, retry) is complete within ``network.timeout`` or a failure."""
    creds = _credentials(config, ref)
    if creds:
        config.mark_secret(creds[1])
    url = f"https://{ref.host}/v2/{ref.repository}/manifests/{ref.reference}"
    headers = {"Accept": ACCEPT}
    access = "anonymous"
    with GuardedClient(config["network.ca_bundle"], config["network.timeout"]) as client:
        response = _get(client, url, "registry", headers=headers)
        if response.status_code == 401:
            scheme, params = _challenge(response)
            if scheme == "bearer":
                token = _token(client, params, ref, creds, config)
                access = f"bearer token ({'as ' + repr(creds[0]) if creds else 'anonymous'})"
                response = _get(client, url, "registry", headers={**headers, "Authorization": f"Bearer {token}"})
            elif scheme == "basic" and creds:
                access = f"basic auth as {creds[0]!r}"
                response = _get(client, url, "registry", headers=headers, auth=creds)
    status, image = response.status_code, f"{ref} (registry {ref.host})"
    codes = _errors(response)
    said = "; ".join(f"{c}: {m}" if m else c for c, m in codes) or f"HTTP {status}"
    if status in (401, 403):
        hint = "" if creds else "; no credentials for it in network.registry_auth"
        if status == 401 and access.startswith("bearer"):
            hint += " (registries also answer 401 for a repository that does not exist)"
        raise RegistryFailure("auth", f"auth denied for {image} with {access}: {said}{hint}")
    if status == 404:
        code = codes[0][0] if codes else ""
        what = "repository unknown" if code == "NAME_UNKNOWN" else "manifest unknown"
        raise RegistryFailure("unknown", f"{what}: {image}: {said}")
    if status == 429:
        raise RegistryFailure("error", f"rate limited by {ref.host} for {image}: {said}")
    if status != 200:
        raise RegistryFailure("error", f"{ref.host} answered HTTP {status} for {image}: {said}")
    return response, access


def _platforms(response: httpx.Response) -> list[str]:
    try:
        manifests = response.json().get("manifests") or []
    except (ValueError, AttributeError):
        return []
    return [
        f"{m['platform'].get('os', '?')}/{m['platform'].get('architecture', '?')}"
        for m in manifests
        if isinstance(m, dict) and isinstance(m.get("platform"), dict)
    ]


def registry_check(images: list[str]) -> Callable[..., Any]:
    """``network.registry.pull[<image>]`` for each configured image (or one skipping check)."""
    if not images:
        return nothing_configured(
            "network.registry.pull",
            "Registries serve the images' manifests",
            "network.images",
            remediation="list the images GuildNet pulls in network.images (config file or --set)",
        )

    @check(
        id="network.registry.pull",
        gates=["install"],
        title="Registry serves the image's manifest",
        remediation="unreachable: open 443 to the registry / fix DNS or the proxy; TLS: set "
        "network.ca_bundle to the registry's CA; auth denied: add {registry: {username, password}} to "
        "network.registry_auth (a token with pull scope); manifest unknown: fix the tag or push the image",
    )
    @parametrize("image", images)
    def check_registry_pull(config: Config, image: str) -> dict[str, object]:
        ref = parse_image(image)
        try:
            response, access = probe(config, ref)
        except RegistryFailure as exc:
            raise AssertionError(str(exc)) from None
        media = response.headers.get("content-type", "?").split(";", 1)[0]
        digest = response.headers.get("docker-content-digest") or (
            "sha256:" + hashlib.sha256(response.content).hexdigest()
        )
        details: dict[str, object] = {
            "registry": ref.host,
            "repository": ref.repository,
            "reference": ref.reference,
            "media_type": media,
            "digest": digest,
            "access": access,
        }
        platforms = _platforms(response)
        if platforms:
            details["platforms"] = platforms
            want = f"linux/{_ARCH.get(platform.machine(), platform.machine())}"
            if want not in platforms:
                warn(f"{ref} is served ({digest}) but its index has no {want} image: {', '.join(platforms)}")
        return {"message": f"{ref}: {media} {digest} via {access}", **details}

    return check_registry_pull

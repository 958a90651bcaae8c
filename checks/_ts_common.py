"""Helpers shared by the tailscale layer's modules (``checks/tailscale.py`` and ``_ts_*``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mgn_verify import ClientError, Config

if TYPE_CHECKING:
    from mgn_verify.clients.headscale import HeadscaleClient
    from mgn_verify.clients.tailscale import LocalAPIClient, TailscaleStatus

__all__ = ["LAYER", "ago", "headscale_of", "login_server", "register_key", "status_of"]

LAYER = "tailscale"


def status_of(client: LocalAPIClient) -> TailscaleStatus:
    """The daemon's status, read once per run; a connection problem is a failure here (the
    ``tailscale.daemon`` check reports it first, so a dependent normally never sees it)."""
    try:
        return client.status()
    except ClientError as exc:
        raise AssertionError(str(exc)) from None


def headscale_of(client: HeadscaleClient | None) -> HeadscaleClient:
    if client is None:  # only reachable when headscale.reachable was not required: a bug
        raise AssertionError("not configured: set headscale.url")
    return client


def login_server(config: Config, status: TailscaleStatus | None = None) -> str:
    """The control server to log in to: ``headscale.url``, else the origin of a pending login
    URL, else a placeholder the user fills in."""
    if config["headscale.url"]:
        return str(config["headscale.url"]).rstrip("/")
    if status is not None and status.auth_url:
        parts = urlsplit(status.auth_url)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return "<login server URL>"


def register_key(auth_url: str) -> str:
    """The Headscale registration id in a pending login URL (``…/register/hskey-authreq-…``):
    the key ``headscale nodes register --key`` takes. Empty for another control server."""
    path = urlsplit(auth_url).path
    if "/register/" not in path:
        return ""
    return path.rsplit("/register/", 1)[1].strip("/")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``2026-05-01 12:00 UTC (3 days ago)`` / ``(in 5 days)``; ``never`` for ``None``."""
    if moment is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    if span >= 2 * 86400:
        amount = f"{span / 86400:.0f} days"
    elif span >= 2 * 3600:
        amount = f"{span / 3600:.0f} hours"
    else:
        amount = f"{max(span / 60, 1):.0f} minutes"
    when = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when} (in {amount})" if seconds > 0 else f"{when} ({amount} ago)"

"""Waivers: proceed although a check fails (kubeadm's ``--ignore-preflight-errors``, or
``verify.waivers`` in config with a reason and an optional expiry date)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError
from ._match import IdMatcher
from ._model import CheckSpec, Waiver

if TYPE_CHECKING:
    from .config import Config

__all__ = ["IGNORE_KEY", "WaiverBook", "not_waivable", "parse_waivers", "setting_where", "waiver_label"]

#: The config key of the kubeadm-style ignore list (``--ignore-preflight-errors`` in config).
IGNORE_KEY = "verify.ignore_preflight_errors"


def setting_where(config: Config, key: str) -> str:
    """Where ``key`` was set, for messages and the audit log: ``config FILE``, ``command line
    --set`` or ``environment VAR``."""
    source = config.source(key) if key in config else ""
    if source == "cli":
        return "command line --set"
    if source.startswith("env:"):
        return f"environment {source[len('env:'):]}"
    return f"config {config.file}" if config.file else "config"


def parse_waivers(entries: Iterable[Any], ignore: Iterable[str], today: date, *,
                  source: str | None = None, ignore_reason: str = "", configured: Iterable[str] = (),
                  configured_where: str = "config") -> list[Waiver]:
    """Config entries (``{id, reason, expires}``), ``verify.ignore_preflight_errors`` entries
    (``configured``, set in ``configured_where``) and ignore-flag ids, validated; ``source``
    (the config file) is named in errors; ``ignore_reason`` is a gated command's ``--reason``."""
    waivers: list[Waiver] = []
    for index, entry in enumerate(entries):
        key = f"verify.waivers[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ConfigError("each waiver needs an 'id' (a check id or glob)", source=source, key=key)
        expires = entry.get("expires")
        if isinstance(expires, date):  # YAML parses an unquoted 2026-12-31 as a date
            expires = expires.isoformat()
        expired = False
        if expires is not None:
            try:
                expired = date.fromisoformat(str(expires)) < today
            except ValueError:
                raise ConfigError(f"'expires' must be a date YYYY-MM-DD, got {expires!r}", source=source,
                                  key=key) from None
        waivers.append(Waiver(entry["id"], str(entry.get("reason", "")), expires, "config", expired))
    for pattern in configured:  # recorded as config: the command line has no such flag
        if pattern.strip():
            waivers.append(Waiver(pattern.strip(), f"{configured_where} key {IGNORE_KEY}", None, "config"))
    for pattern in ignore:
        if pattern.strip():
            why = f"--ignore-preflight-errors ({ignore_reason})" if ignore_reason else "--ignore-preflight-errors"
            waivers.append(Waiver(pattern.strip(), why, None, "cli"))
    return waivers


def _from_ignore_key(waiver: Waiver) -> bool:
    return waiver.source == "config" and waiver.reason.endswith(f" key {IGNORE_KEY}")


def waiver_label(waiver: Waiver) -> str:
    """What granted an override, for the report and the audit log: ``--ignore-preflight-errors
    ID``, ``config FILE key verify.ignore_preflight_errors ID`` or ``config ID`` (a waiver)."""
    if waiver.source == "cli":
        return f"--ignore-preflight-errors {waiver.pattern}"
    if _from_ignore_key(waiver):
        return f"{waiver.reason} {waiver.pattern}"
    return f"config {waiver.pattern}"


def not_waivable(message: str, waiver: Waiver) -> str:
    """The message of a failure a waiver matched but may not waive (``@check(waivable=False)``):
    overriding it could only lead to a failed operation."""
    by = ("--ignore-preflight-errors" if waiver.source == "cli" else IGNORE_KEY if _from_ignore_key(waiver)
          else "a configured waiver")
    return f"{message} (not waivable: {by} {waiver.pattern!r} cannot override this check)".strip()


class WaiverBook:
    """The run's waivers, matched against the loaded checks: an exact id (case-insensitive, on
    the id or the base id) wins over a glob reading of its brackets; ``all`` matches everything."""

    def __init__(self, waivers: list[Waiver], specs: Iterable[CheckSpec] = ()) -> None:
        self._waivers = waivers
        self._matcher = IdMatcher(specs, fold_case=True)

    def find(self, spec: CheckSpec) -> Waiver | None:
        """The first active waiver matching the check, else the first expired one, else None."""
        expired = None
        for waiver in self._waivers:
            if waiver.pattern.lower() == "all" or self._matcher.matches(waiver.pattern, spec):
                if not waiver.expired:
                    return waiver
                expired = expired or waiver
        return expired

    def unmatched(self, patterns: Iterable[str]) -> list[tuple[str, str]]:
        """(pattern, " (did you mean ...?)") for each of ``patterns`` that waives no check."""
        return [(pattern, self._matcher.suggest(pattern)) for pattern in patterns
                if pattern.strip().lower() != "all" and not self._matcher.select(pattern.strip())]

"""Waivers: proceed although a check fails (kubeadm's ``--ignore-preflight-errors``, or
``verify.waivers`` in config with a reason and an optional expiry date)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ._exceptions import ConfigError
from ._match import IdMatcher
from ._model import CheckSpec, Waiver

__all__ = ["WaiverBook", "not_waivable", "parse_waivers"]


def parse_waivers(entries: Iterable[Any], ignore: Iterable[str], today: date, *,
                  source: str | None = None, ignore_reason: str = "") -> list[Waiver]:
    """Config entries (``{id, reason, expires}``) and ignore-flag ids, validated; ``source``
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
    for pattern in ignore:
        if pattern.strip():
            why = f"--ignore-preflight-errors ({ignore_reason})" if ignore_reason else "--ignore-preflight-errors"
            waivers.append(Waiver(pattern.strip(), why, None, "cli"))
    return waivers


def not_waivable(message: str, waiver: Waiver) -> str:
    """The message of a failure a waiver matched but may not waive (``@check(waivable=False)``):
    overriding it could only lead to a failed operation."""
    by = "--ignore-preflight-errors" if waiver.source == "cli" else "a configured waiver"
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

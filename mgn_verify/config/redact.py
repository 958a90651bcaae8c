"""Redaction of secret values from anything that leaves the process (reports, logs, console)."""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["REDACTED", "SECRET_NAME", "Redactor", "scrub_argv"]

REDACTED = "***"
# Values shorter than this are not hunted in free text: a 2-letter "secret" would shred the
# report. Such values are still masked wherever they appear as a whole config value.
MIN_SECRET_LEN = 3
#: A setting whose last name part looks like this is secret even when no plugin declared it.
SECRET_NAME = re.compile(r"(token|password|passwd|secret|api_key|apikey|credential)", re.IGNORECASE)


def scrub_argv(argv: list[str]) -> list[str]:
    """The command line with the values of secret-looking ``--set key=value`` pairs masked.

    Used where no resolved configuration (and so no ``Redactor``) exists, e.g. when loading
    failed; with a configuration, its redactor masks the declared secrets too.
    """
    scrubbed: list[str] = []
    previous = ""
    for arg in argv:
        prefix, pair = ("--set=", arg[len("--set="):]) if arg.startswith("--set=") else ("", arg)
        key, sep, _ = pair.partition("=")
        is_pair = bool(prefix) or previous == "--set"
        if is_pair and sep and SECRET_NAME.search(key.rsplit(".", 1)[-1]):
            scrubbed.append(f"{prefix}{key}={REDACTED}")
        else:
            scrubbed.append(arg)
        previous = arg
    return scrubbed


class Redactor:
    """Holds the run's secret values and removes them from text and nested data."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        """Register a secret (a token, a password, a kubeconfig credential)."""
        if isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
            with self._lock:
                if value not in self._secrets:
                    self._secrets.add(value)
                    # Longest first, so a secret containing another is removed whole.
                    alternatives = sorted(self._secrets, key=len, reverse=True)
                    self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, value) if pattern is not None else value

    def data(self, value: Any) -> Any:
        """A copy of ``value`` (str, list, tuple, dict nesting) with every secret replaced."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.data(v) for v in value)
        return value

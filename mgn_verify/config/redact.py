"""Redaction of secret values from anything that leaves the process (reports, logs, console).

The rules:

- A secret is a value registered with ``Redactor.add``: every setting declared ``secret=True``,
  every setting whose last name part looks secret (``SECRET_NAME``: token, password, secret,
  api key, credential...) and every value a plugin marks at run time (``config.mark_secret``).
- Registered secrets are hunted in free text only when they are at least 3 characters long
  (``MIN_SECRET_LEN``): a 2-letter "secret" would shred every report. A shorter secret is
  still masked wherever it is a whole config value (``mgn config show``).
- The password of a URL's userinfo (``https://user:PASSWORD@host``, any scheme) is masked in
  all text whether or not it was registered: ``https://user:***@host``.
- Nested data is redacted everywhere inside: dict keys and values, lists, tuples, sets, bytes
  (as UTF-8), and any other object through its text form when that holds a secret.
"""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["CYCLE", "MIN_SECRET_LEN", "REDACTED", "SECRET_NAME", "Redactor", "safe_repr", "scrub_argv"]

REDACTED = "***"
#: Registered secrets shorter than this are not hunted in free text (see the module docs).
MIN_SECRET_LEN = 3
#: A setting whose last name part looks like this is secret even when no plugin declared it.
SECRET_NAME = re.compile(r"(token|password|passwd|secret|api[_-]?key|credential)", re.IGNORECASE)
#: What a value that contains itself shows where it recurs.
CYCLE = "<cycle>"
#: ``scheme://user:PASSWORD@``: the password may not hold ``/ ? # @`` unescaped (RFC 3986).
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*:)[^\s/?#@]+(?=@)")
_MAX_REPR = 1_000


def safe_repr(value: object, limit: int = _MAX_REPR) -> str:
    """``repr(value)``, bounded, and never raising (a broken ``__repr__`` is a plugin's bug)."""
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def mask_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(lambda match: match[1] + REDACTED, text) if "://" in text else text


def scrub_argv(argv: list[str]) -> list[str]:
    """The command line with every secret-looking value masked, for when no resolved
    configuration (and so no ``Redactor`` with the declared secrets) exists, e.g. loading failed:
    ``--set KEY=VALUE``/``--set=KEY=VALUE`` (also ``KEY:VALUE``), any ``KEY=VALUE`` or
    ``--option=VALUE`` argument, the argument after ``--secret-looking-option``, and URL passwords.
    """
    scrubbed: list[str] = []
    previous = ""
    for arg in argv:
        scrubbed.append(mask_url_passwords(_scrub_arg(arg, previous)))
        previous = arg
    return scrubbed


def _scrub_arg(arg: str, previous: str) -> str:
    if arg.startswith("--set="):
        return "--set=" + _scrub_pair(arg[len("--set="):], ":")
    if previous == "--set":
        return _scrub_pair(arg, ":")
    if "=" in arg:
        return _scrub_pair(arg, "")
    if previous.startswith("-") and "=" not in previous and previous != "--set" \
            and _looks_secret(previous) and not arg.startswith("-"):
        return REDACTED
    return arg


def _scrub_pair(pair: str, other_separator: str) -> str:
    """``key=value`` (or ``key<other_separator>value``) with the value masked if the key looks secret."""
    separators = "=" + other_separator
    cut = min((pair.find(sep) for sep in separators if sep in pair), default=-1)
    if cut <= 0 or not _looks_secret(pair[:cut]):
        return pair
    return pair[:cut + 1] + REDACTED


def _looks_secret(key: str) -> bool:
    return bool(SECRET_NAME.search(key.lstrip("-").rsplit(".", 1)[-1]))


class Redactor:
    """Holds the run's secret values and removes them from text and nested data.

    Truthy when secrets are registered; ``text`` and ``data`` also mask URL passwords
    when it is not, so call them unconditionally.
    """

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
        if pattern is not None:
            value = pattern.sub(REDACTED, value)
        return mask_url_passwords(value)

    def bytes(self, value: bytes) -> bytes:
        """Bytes as UTF-8 text, redacted, and back (undecodable bytes pass through unchanged)."""
        return self.text(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with every secret replaced (see the module docs); a container
        that contains itself shows ``CYCLE`` where it recurs."""
        return self._data(value, set())

    def _data(self, value: Any, active: set[int]) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes | bytearray):
            return self.bytes(bytes(value))
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict | list | tuple | set | frozenset):
            if id(value) in active:
                return CYCLE
            active.add(id(value))
            try:
                return self._container(value, active)
            finally:
                active.discard(id(value))
        shown = safe_repr(value)  # any other object: its text form, when that holds a secret
        redacted = self.text(shown)
        return value if redacted == shown else redacted

    def _container(self, value: Any, active: set[int]) -> Any:
        if isinstance(value, dict):
            return {self._data(k, active): self._data(v, active) for k, v in value.items()}
        items = [self._data(v, active) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        try:
            return frozenset(items) if isinstance(value, frozenset) else set(items)
        except TypeError:  # a member became unhashable: keep the members, lose the set type
            return items

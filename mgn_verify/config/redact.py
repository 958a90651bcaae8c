"""Redaction of secret values from anything that leaves the process (reports, logs, console).

The rules:

- A secret is a value registered with ``Redactor.add``: every setting declared ``secret=True``,
  every setting whose last name part looks secret (``SECRET_NAME``: token, password, secret,
  api key, credential...), declared by a plugin or not (an unknown key of the file or
  ``--set``), each string of such a setting's list or mapping value, and every value a plugin
  marks at run time (``config.mark_secret``). Its escaped forms are hunted too (as inside a repr,
  ``ascii`` or JSON string: backslashes doubled, quotes, tabs escaped), as reprs reach messages.
  An int or float secret is hunted as its text (``str(value)``: ``424242``); a bool never.
- Registered secrets are hunted in free text only when they are at least 3 characters long
  (``MIN_SECRET_LEN``, numbers by their text: 42 is not hunted, 424 is): a 2-letter "secret"
  would shred every report. A shorter secret is
  still masked wherever it is a whole config value (``mgn config show``).
- The password of a URL's userinfo (``https://user:PASSWORD@host``, any scheme) is masked in
  all text whether or not it was registered: ``https://user:***@host``. As urllib and httpx
  read a URL, the userinfo ends at the *last* ``@`` of the authority (which ends at ``/ ? #``,
  whitespace, a quote or ``< >``): ``https://u:p@ss@host`` becomes ``https://u:***@host``.
- Nested data is redacted everywhere inside: dict keys and values, lists, tuples, sets, bytes
  (as UTF-8); any other object becomes its (redacted, bounded) ``repr``.
- Text is always redacted whole *before* it is cut to a bound, so a cut never splits a secret.
"""

from __future__ import annotations

import json
import os
import re
import threading
import weakref
from datetime import date, time
from typing import Any

__all__ = ["CYCLE", "MIN_SECRET_LEN", "REDACTED", "SECRET_NAME", "Redactor", "holds_secret", "looks_secret",
           "mask_url_passwords", "safe_repr", "scrub_argv", "url_passwords"]

REDACTED = "***"
#: Registered secrets shorter than this are not hunted in free text (see the module docs).
MIN_SECRET_LEN = 3
#: A setting whose last name part looks like this is secret even when no plugin declared it.
SECRET_NAME = re.compile(r"(token|password|passwd|secret|api[_-]?key|credential)", re.IGNORECASE)
#: What a value that contains itself shows where it recurs.
CYCLE = "<cycle>"
#: Where a URL's authority ends: its userinfo runs to the last ``@`` before this.
_END = r"""\s/?#"'<>`"""
#: ``scheme://user:PASSWORD@host``: the user runs to the first ``:``, the password to the last
#: ``@`` of the authority (so it may hold ``@`` and ``:``), as ``urllib.parse`` splits it.
_URL_PASSWORD = re.compile(rf"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^{_END}:]*:)[^{_END}]+(?=@[^{_END}@]*(?:[{_END}]|$))")
_MAX_REPR = 1_000
#: Every redactor holding secrets: a ``safe_repr`` made without one at hand still hides them.
_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _fresh_lock_in_child() -> None:
    """A child forked (``--isolate``) while another thread held the lock must not deadlock."""
    global _LIVE_LOCK
    _LIVE_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def safe_repr(value: object, limit: int = _MAX_REPR, *, redactor: Redactor | None = None) -> str:
    """``repr(value)``, redacted, then bounded to ``limit`` characters, never raising (a broken
    ``__repr__`` is a plugin's bug). Redacted with ``redactor``, or else with the secrets of every
    live ``Redactor`` of the process: the whole text is redacted before it is cut, so a cut never
    leaves part of a secret."""
    try:
        text = repr(value)
    except (Exception, SystemExit):  # a plugin's __repr__ may raise anything but Ctrl-C
        return f"<unrepresentable {type(value).__name__}>"
    text = redactor.text(text) if redactor is not None else _redact_live(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _redact_live(text: str) -> str:
    """``text`` redacted with the secrets of every live ``Redactor``, URL passwords masked."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for each in live:
        text = each.text(text)
    return mask_url_passwords(text)


def holds_secret(text: str) -> bool:
    """Whether ``text`` holds a secret of any live ``Redactor`` or a URL password: whether a cut
    of it could leave part of one unmasked."""
    return _redact_live(text) != text


def url_passwords(text: str) -> list[str]:
    """The passwords of the URLs in ``text`` (``https://user:PASSWORD@host``)."""
    if "://" not in text:
        return []
    return [match[0][len(match[1]):] for match in _URL_PASSWORD.finditer(text)]


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL's userinfo replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda match: match[1] + REDACTED, text) if "://" in text else text


def looks_secret(key: str) -> bool:
    """Whether a setting (``acme.api_token``) or option (``--password``) name looks secret:
    its last dotted part matches ``SECRET_NAME``."""
    return bool(SECRET_NAME.search(key.lstrip("-").rsplit(".", 1)[-1]))


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
        option, _, rest = arg.partition("=")
        if option.startswith("-") and not looks_secret(option) and "=" in rest:
            return f"{option}={_scrub_pair(rest, '')}"  # --env=DB_PASSWORD=x: the pair is the value
        return _scrub_pair(arg, "")
    if previous.startswith("-") and "=" not in previous and previous != "--set" \
            and looks_secret(previous) and not arg.startswith("-"):
        return REDACTED
    return arg


def _scrub_pair(pair: str, other_separator: str) -> str:
    """``key=value`` (or ``key<other_separator>value``) with the value masked if the key looks secret."""
    separators = "=" + other_separator
    cut = min((pair.find(sep) for sep in separators if sep in pair), default=-1)
    if cut <= 0 or not looks_secret(pair[:cut]):
        return pair
    return pair[:cut + 1] + REDACTED


def _quoted_forms(value: str) -> set[str]:
    """``value`` as it shows inside a ``repr``, ``ascii`` or JSON string literal: a backslash,
    quote, tab, newline or non-ASCII character is escaped there (an assertion's explanation
    shows its operands' reprs). ``forced`` holds both quotes, so repr escapes ``'`` as it does
    inside a longer string that has both."""
    forced = value + "'\""
    return {repr(value)[1:-1], repr(forced)[1:-4], ascii(value)[1:-1], ascii(forced)[1:-4],
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


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
        """Register a secret (a token, a password, a kubeconfig credential), with the escaped
        forms it takes inside a repr or JSON string (``_quoted_forms``). A number is registered
        as its text (``str``): an int setting declared secret shows in an assert's operands."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
            forms = {value, *_quoted_forms(value)}
            with self._lock:
                if not forms <= self._secrets:
                    self._secrets |= forms
                    # Longest first, so a secret containing another is removed whole.
                    alternatives = sorted(self._secrets, key=len, reverse=True)
                    self._pattern = re.compile("|".join(map(re.escape, alternatives)))
            with _LIVE_LOCK:
                _LIVE.add(self)

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
        if isinstance(value, date | time):  # YAML dates (a waiver's expiry) read as dates
            return value.isoformat()
        if isinstance(value, dict | list | tuple | set | frozenset):
            if id(value) in active:
                return CYCLE
            active.add(id(value))
            try:
                return self._container(value, active)
            finally:
                active.discard(id(value))
        return safe_repr(value, redactor=self)  # any other object: its text, redacted, then bounded

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

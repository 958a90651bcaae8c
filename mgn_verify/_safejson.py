"""One sanitizer for whatever a check hands back: strict-JSON-safe, bounded, and redacted.

``to_safe_json`` runs where ``details`` enter a ``Result`` (``_runner.redact``), so every
reporter (JSON, JUnit, console, third-party) only ever sees plain, finite, acyclic data:

- ``dict`` (and any mapping) → dict with string keys (non-string keys: ``str()`` for numbers,
  a bounded ``repr`` otherwise); ``list``/``tuple``/``set``/``frozenset`` → list (sets sorted);
- NaN, +inf and -inf → the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- ``bytes`` → text (UTF-8, undecodable bytes as ``\\xNN``); dates → ISO 8601; enums → value;
- a container that contains itself → ``"<cycle>"``; deeper than ``MAX_DEPTH`` → ``"<too deep>"``;
- strings beyond ``MAX_STR`` characters and containers beyond ``MAX_ITEMS`` entries are cut,
  with a note saying how much was left out; anything else → its bounded ``repr``;
- a value whose conversion raises (an ``__iter__``, ``items()`` or ``isoformat()`` of a plugin's
  class) → its ``repr``, redacted, then bounded: odd details never take the run down.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from .config.redact import CYCLE, Redactor, safe_repr

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_STR", "bounded_text", "to_safe_json"]

MAX_DEPTH = 32
MAX_ITEMS = 1_000
MAX_STR = 16_384
#: Kept beyond ``MAX_STR`` before redacting: a secret across the cut is whole when it is redacted,
#: and a huge text is not scanned in full.
_REDACT_MARGIN = 4_096
#: Values converted per call: with depth and width bounded separately, this bounds the product.
MAX_NODES = 100_000
TOO_DEEP = "<too deep>"
TOO_LARGE = "<too large>"
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
_MAX_INT_BITS = 4_000  # int → str refuses beyond 4300 digits (CVE-2020-10735 limit)


def bounded_text(value: str, redactor: Redactor) -> str:
    """``value`` redacted, *then* cut to ``MAX_STR`` characters with a note saying how many more
    there were (a cut must never split a secret: half a secret would escape redaction)."""
    raw = value[:MAX_STR + _REDACT_MARGIN]
    text = redactor.text(raw)
    more = max(0, len(text) - MAX_STR) + len(value) - len(raw)
    return f"{text[:MAX_STR]}… ({more} more characters)" if more else text


def to_safe_json(value: Any, redactor: Redactor | None = None) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts, secrets masked."""
    return _Sanitizer(redactor or Redactor()).convert(value, 0)


class _Sanitizer:
    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._active: set[int] = set()  # containers on the current path: a repeat is a cycle
        self._budget = MAX_NODES

    def convert(self, value: Any, depth: int) -> Any:
        self._budget -= 1
        if self._budget < 0:
            return TOO_LARGE
        try:
            return self._convert(value, depth)
        except BaseException:  # a plugin's class raising anything (even SystemExit)
            return self.repr(value)

    def _convert(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.text(str.__str__(value))
        if isinstance(value, int):
            return int(value) if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else _NON_FINITE.get(value, "NaN")
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self._container(value, depth)
        return self._scalar(value, depth)

    def text(self, value: str) -> str:
        value = bounded_text(value, self._redactor)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value

    def repr(self, value: Any) -> str:
        """``repr(value)`` redacted *before* it is bounded (``safe_repr``); never raises."""
        try:
            return self.text(safe_repr(value, redactor=self._redactor))
        except BaseException:  # see convert
            return f"<unrepresentable {type(value).__name__}>"

    def _container(self, value: Any, depth: int) -> Any:
        if id(value) in self._active:
            return CYCLE
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        self._active.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self._mapping(value, depth)
            items = _sorted_set(value) if isinstance(value, set | frozenset) else value
            out = [self.convert(item, depth + 1) for item in _first(items, MAX_ITEMS)]
            if len(value) > MAX_ITEMS:
                out.append(f"… ({len(value) - MAX_ITEMS} more items)")
            return out
        finally:
            self._active.discard(id(value))

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in _first(value.items(), MAX_ITEMS):
            name = self._key(key)
            if name in out:  # two keys with one text form (1 and "1"): keep both, tell them apart
                name = self.repr(key)
            out[name] = self.convert(item, depth + 1)
        if len(value) > MAX_ITEMS:
            out["…"] = f"({len(value) - MAX_ITEMS} more keys)"
        return out

    def _key(self, key: Any) -> str:
        if isinstance(key, str):
            return self.text(str.__str__(key))
        if isinstance(key, int) and not isinstance(key, bool):
            bits = key.bit_length()
            return self.text(int.__repr__(key) if bits <= _MAX_INT_BITS else f"<int of {bits} bits>")
        if isinstance(key, float):
            return self.text(float.__repr__(key))
        return self.repr(key)

    def _scalar(self, value: Any, depth: int) -> Any:
        if isinstance(value, bytes | bytearray | memoryview):
            return self.text(bytes(value).decode("utf-8", "backslashreplace"))
        if isinstance(value, datetime | date | time):
            return self.text(value.isoformat())
        if isinstance(value, enum.Enum):
            return self.convert(value.value, depth)
        if isinstance(value, PurePath | uuid.UUID | Decimal):
            return self.text(str(value))
        return self.repr(value)


def _first(items: Any, count: int) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if len(out) == count:
            break
        out.append(item)
    return out


def _sorted_set(value: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(value)
    except TypeError:  # mixed types: a stable order all the same
        return sorted(value, key=safe_repr)

"""Settings (declared by plugins through ``mgn_add_settings``) and the resolved ``Config``."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigError
from .redact import REDACTED, Redactor, looks_secret

__all__ = ["KINDS", "Config", "Setting", "SettingsRegistry"]

#: The value kinds a setting can declare; ``any`` is validated by its consumer.
KINDS = ("str", "int", "float", "bool", "list", "dict", "any")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: ``key`` is dotted (``section.name``), or a top-level name such as
    ``clusters`` for a value that is a whole list."""

    key: str
    default: Any
    kind: str
    help: str = ""
    secret: bool = False
    env: tuple[str, ...] = ()
    plugin: str = ""
    #: The declared range (see ``SettingsRegistry.add``); ``None`` means unbounded.
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    choices: tuple[Any, ...] | None = None
    finite: bool = True

    @property
    def masked(self) -> bool:
        """Declared ``secret``, or named like a secret (``acme.api_token``): never shown."""
        return self.secret or looks_secret(self.key)

    @property
    def env_names(self) -> tuple[str, ...]:
        """Explicit aliases first, then the derived ``MGN_SECTION_NAME``."""
        derived = "MGN_" + self.key.upper().replace(".", "_")
        return (*self.env, derived) if derived not in self.env else self.env

    def coerce(self, value: Any, *, source: str, from_text: bool = False) -> Any:
        """Check (and, for environment or command-line text, convert) ``value`` to this kind and
        range: every source (file, environment, ``--set``, flags) gets the same one-line error."""
        if value is None:
            return None
        converted = self._convert(value, source=source, from_text=from_text)
        problem = self.problem(converted)
        if problem is not None:
            raise ConfigError(problem, source=source, key=self.key)
        return converted

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of this kind) is outside the declared range, else None."""
        if isinstance(value, list) and self.choices is not None:
            return next(filter(None, (self._choice_problem(item) for item in value)), None)
        if isinstance(value, float) and self.finite and not math.isfinite(value):
            return f"must be a finite number, got {self._shown(value)}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.gt is not None and not value > self.gt:
                return f"must be > {self.gt}, got {self._shown(value)}"
            if self.min is not None and not value >= self.min:
                return f"must be >= {self.min}, got {self._shown(value)}"
            if self.max is not None and not value <= self.max:
                return f"must be <= {self.max}, got {self._shown(value)}"
        return self._choice_problem(value)

    def _choice_problem(self, value: Any) -> str | None:
        if self.choices is None or value in self.choices:
            return None
        return f"must be one of {', '.join(map(repr, self.choices))}, got {self._shown(value, repr)}"

    def _shown(self, value: Any, form: Callable[[Any], str] = str) -> str:
        return REDACTED if self.masked else str(form(value))

    def _convert(self, value: Any, *, source: str, from_text: bool) -> Any:
        kind = self.kind
        try:
            if from_text and isinstance(value, str):
                value = _parse_text(kind, value)
            if kind == "bool" and isinstance(value, bool):
                return value
            if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
                return value
            if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if kind == "str" and isinstance(value, str):
                return value
            if kind == "list" and isinstance(value, list):
                return value
            if kind == "dict" and isinstance(value, dict):
                return value
            if kind == "any":
                return value
        except ValueError:
            pass
        shown = "" if self.masked else f" {value!r}"
        raise ConfigError(f"expected {kind}, got {type(value).__name__}{shown}", source=source, key=self.key)


def _parse_text(kind: str, text: str) -> Any:
    if kind == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(text)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "list" and not text.lstrip().startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind in ("list", "dict"):  # JSON for structured values: --set 'a.b={"k": 1}'
        return json.loads(text)
    return text


def _kind_of(default: Any) -> str:
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("list", list), ("dict", dict)):
        if isinstance(default, types):
            return kind
    return "any"


class SettingsRegistry:
    """Where plugins declare their settings (``settings.add("system.min_cpus", 2, help=…)``)."""

    def __init__(self) -> None:
        self._settings: dict[str, Setting] = {}
        self.current_plugin = ""

    def add(self, key: str, default: Any, *, kind: str | None = None, help: str = "",
            secret: bool = False, env: str | tuple[str, ...] = (), min: float | None = None,
            max: float | None = None, gt: float | None = None, choices: Iterable[Any] | None = None,
            finite: bool = True) -> None:
        """Declare ``key`` with its default.

        ``kind`` is inferred from the default when omitted (pass it for a ``None`` default).
        ``secret`` values are redacted everywhere. ``env`` adds environment variable names to
        the derived ``MGN_SECTION_NAME``.

        Ranges are checked for every source (file, environment, ``--set``, flags), with one
        error line such as ``config.yaml, key 'acme.retries': must be >= 0, got -1``:

        - ``min=`` / ``max=``: inclusive bounds of an ``int`` or ``float``; ``gt=``: an exclusive
          lower bound (``gt=0`` for a timeout: any positive number).
        - ``choices=``: the allowed values (of a scalar, or of each item of a ``list``).
        - ``finite=``: a ``float`` rejects NaN and ±infinity unless ``finite=False``.

        A ``None`` value is never range-checked; a default outside its own range is an error
        of the declaring plugin.
        """
        if not key or key.startswith(".") or key.endswith("."):
            raise ValueError(f"setting {key!r} must be dotted (section.name) or a top-level name")
        if key in self._settings:
            raise ValueError(f"setting {key!r} declared twice ({self._settings[key].plugin} and "
                             f"{self.current_plugin})")
        kind = kind or _kind_of(default)
        if kind not in KINDS:
            raise ValueError(f"setting {key!r}: unknown kind {kind!r}")
        aliases = (env,) if isinstance(env, str) else tuple(env)
        setting = Setting(key, default, kind, help, secret, aliases, self.current_plugin, min=min, max=max, gt=gt,
                          choices=tuple(choices) if choices is not None else None, finite=finite)
        problem = setting.problem(default) if default is not None else None
        if problem is not None:
            raise ValueError(f"setting {key!r}: default {problem}")
        self._settings[key] = setting

    def get(self, key: str) -> Setting | None:
        return self._settings.get(key)

    def __iter__(self) -> Iterator[Setting]:
        return iter(sorted(self._settings.values(), key=lambda s: s.key))

    def __contains__(self, key: object) -> bool:
        return key in self._settings

    def is_section(self, prefix: str) -> bool:
        """Whether some setting lives below ``prefix`` (``verify`` for ``verify.timeout``)."""
        return any(key.startswith(prefix + ".") for key in self._settings)

    def suggest(self, key: str) -> str | None:
        close = difflib.get_close_matches(key, list(self._settings), n=1, cutoff=0.6)
        return close[0] if close else None


class Config(Mapping[str, Any]):
    """The resolved configuration: ``config["system.min_cpus"]``, ``config.section("system")``.

    Each value remembers where it came from (``config.source(key)``). Secret values are
    registered with ``config.redactor`` so no report can show them.
    """

    def __init__(self, values: dict[str, Any], sources: dict[str, str], registry: SettingsRegistry,
                 redactor: Redactor, file: str | None = None, extra: dict[str, Any] | None = None) -> None:
        self._values = values
        self._sources = sources
        self.registry = registry
        self.redactor = redactor
        self.file = file
        #: Keys found in sources that no plugin declared (kept for plugins that read them raw).
        self.extra = extra or {}

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def source(self, key: str) -> str:
        return self._sources.get(key, "default")

    def section(self, name: str) -> dict[str, Any]:
        """All keys of one section, without the ``section.`` prefix."""
        prefix = name + "."
        merged = {**self.extra, **self._values}
        return {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}

    def mark_secret(self, value: object) -> None:
        """Declare a value found at run time (e.g. a kubeconfig token) as secret."""
        self.redactor.add(value)

    def redacted_items(self) -> list[tuple[str, Any, str]]:
        """(key, value with secrets masked, source) for every key: what ``mgn config show`` prints."""
        rows = []
        for key in sorted(self._values):
            setting = self.registry.get(key)
            value = self._values[key]
            if value and (setting.masked if setting is not None else looks_secret(key)):
                value = REDACTED
            rows.append((key, self.redactor.data(_mask_secret_keys(value)), self.source(key)))
        return rows


def _mask_secret_keys(value: Any) -> Any:
    """``value`` with what secret-looking keys hold masked whole at any depth, however short
    (``clusters[].rethinkdb.password``: too short a secret is never hunted in free text)."""
    if isinstance(value, dict):
        return {key: REDACTED if value[key] and looks_secret(str(key)) else _mask_secret_keys(value[key])
                for key in value}
    if isinstance(value, list):
        return [_mask_secret_keys(item) for item in value]
    return value

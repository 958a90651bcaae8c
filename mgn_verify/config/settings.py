"""Settings (declared by plugins through ``mgn_add_settings``) and the resolved ``Config``."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigError
from .redact import REDACTED, Redactor

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

    @property
    def env_names(self) -> tuple[str, ...]:
        """Explicit aliases first, then the derived ``MGN_SECTION_NAME``."""
        derived = "MGN_" + self.key.upper().replace(".", "_")
        return (*self.env, derived) if derived not in self.env else self.env

    def coerce(self, value: Any, *, source: str, from_text: bool = False) -> Any:
        """Check (and, for environment or command-line text, convert) ``value`` to this kind."""
        if value is None:
            return None
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
        shown = "" if self.secret else f" {value!r}"
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
            secret: bool = False, env: str | tuple[str, ...] = ()) -> None:
        """Declare ``key`` with its default; ``kind`` is inferred from the default when omitted
        (pass it for a ``None`` default). ``secret`` values are redacted everywhere."""
        if not key or key.startswith(".") or key.endswith("."):
            raise ValueError(f"setting {key!r} must be dotted (section.name) or a top-level name")
        if key in self._settings:
            raise ValueError(f"setting {key!r} declared twice ({self._settings[key].plugin} and "
                             f"{self.current_plugin})")
        kind = kind or _kind_of(default)
        if kind not in KINDS:
            raise ValueError(f"setting {key!r}: unknown kind {kind!r}")
        aliases = (env,) if isinstance(env, str) else tuple(env)
        self._settings[key] = Setting(key, default, kind, help, secret, aliases, self.current_plugin)

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
            if setting is not None and setting.secret and value:
                value = REDACTED
            rows.append((key, self.redactor.data(value), self.source(key)))
        return rows

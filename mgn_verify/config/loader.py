"""Reading configuration sources and resolving them against the declared settings."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError
from .._text import did_you_mean
from .redact import Redactor, looks_secret
from .settings import Config, Setting, SettingsRegistry

__all__ = ["DEFAULT_CONFIG_PATH", "NON_SETTING_ENV", "ConfigSources", "configured_checks_dirs", "early_value",
           "load_sources", "resolve"]

DEFAULT_CONFIG_PATH = Path("~/.metaguildnet/config.yaml")
#: ``MGN_*`` variables that are not settings, so never "unknown" (the rest must name a setting).
NON_SETTING_ENV = frozenset({"MGN_CONFIG", "MGN_DISABLE_PLUGIN_AUTOLOAD", "MGN_LAB_STATE_DIR", "MGN_TRACE_HOOKS"})


@dataclass
class ConfigSources:
    """The raw layers, before any plugin's settings are known."""

    file: str | None = None
    file_data: dict[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    #: key -> (value, is_text): ``--set k=v`` gives text, dedicated flags give typed values.
    cli: dict[str, tuple[Any, bool]] = field(default_factory=dict)

    def raw(self, key: str, default: Any = None) -> Any:
        """A value by dotted key from the file, before validation (used to find plugins)."""
        node: Any = self.file_data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def load_sources(path: str | None, env: Mapping[str, str], cli: dict[str, tuple[Any, bool]]) -> ConfigSources:
    """Find and parse the config file: ``path`` (``--config``), else ``MGN_CONFIG``, else
    ``~/.metaguildnet/config.yaml`` if it exists. An explicitly named file must exist."""
    explicit = path or env.get("MGN_CONFIG") or None
    candidate = Path(explicit).expanduser() if explicit else DEFAULT_CONFIG_PATH.expanduser()
    if not candidate.exists():
        if explicit:
            raise ConfigError("config file not found", source=str(candidate))
        return ConfigSources(env=env, cli=cli)
    return ConfigSources(file=str(candidate), file_data=_parse_yaml(candidate), env=env, cli=cli)


def _parse_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc.__class__.__name__}: {exc}", source=str(path)) from None
    if not text.strip():  # an empty file (or /dev/null) needs no parser: ~30 ms saved
        return {}
    import yaml  # lazy: `mgn --version` and config-less runs must not pay for it
    loader = _loader_class()(text)
    root = None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _BadTimestamp as bad:
        mark = bad.node.start_mark
        raise ConfigError(f"{bad.node.value} is not a valid date (use YYYY-MM-DD, or quote it)",
                          source=f"{path}:{mark.line + 1}:{mark.column + 1}", key=_key_path(root, bad.node)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML: {problem}", source=where) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of sections, not {type(data).__name__}",
                          source=str(path))
    return data


class _BadTimestamp(Exception):
    """A scalar YAML reads as a timestamp (``2020-13-45``) that is no real date."""

    def __init__(self, node: Any) -> None:
        super().__init__(node.value)
        self.node = node


@functools.cache
def _loader_class() -> type[Any]:
    """``yaml.SafeLoader`` whose impossible dates raise ``_BadTimestamp`` (with their node, so
    the error names file:line and key) instead of a bare ``ValueError``."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        try:
            return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
        except ValueError:
            raise _BadTimestamp(node) from None

    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    return Loader


def _key_path(root: Any, target: Any) -> str | None:
    """The dotted key of ``target`` below ``root`` (``verify.waivers[0].expires``)."""
    import yaml

    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path or None
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, f"{path}.{key.value}" if path else str(key.value)) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((value, f"{path}[{index}]") for index, value in enumerate(node.value))
    return None


def resolve(sources: ConfigSources, registry: SettingsRegistry, *,
            warn: Callable[[str], None], redactor: Redactor | None = None) -> Config:
    """Merge defaults < file < environment < command line, validating each value's type.

    Unknown keys (file or ``--set``) are kept in ``Config.extra`` and reported through ``warn``
    with the closest known key, as are ``MGN_*`` variables that name no setting.
    """
    redactor = redactor or Redactor()
    values: dict[str, Any] = {s.key: s.default for s in registry}
    where: dict[str, str] = {}
    extra: dict[str, Any] = {}
    file_label = sources.file or "config"

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for name, value in node.items():
            key = f"{prefix}{name}"
            setting = registry.get(key)
            if setting is not None:
                values[key] = setting.coerce(value, source=file_label)
                where[key] = f"file:{file_label}"
            elif isinstance(value, dict):
                walk(value, key + ".")
            elif value is None and registry.is_section(key):
                continue  # "verify:" with nothing under it: an empty section
            elif registry.is_section(key):
                raise ConfigError(f"expected a mapping of settings, got {type(value).__name__}",
                                  source=file_label, key=key)
            else:
                extra[key] = value
                warn(f"{file_label}: unknown key {key!r}{_hint(registry.suggest(key))}")

    walk(sources.file_data, "")
    _warn_unknown_env(registry, sources.env, warn)
    for setting in registry:
        _apply_env(setting, sources.env, values, where)
    for key, (value, is_text) in sources.cli.items():
        declared = registry.get(key)
        if declared is None:  # like an unknown file key: kept raw, a warning with a suggestion
            extra[key] = value
            warn(f"command line: unknown key {key!r}{_hint(registry.suggest(key))}")
            continue
        values[key] = declared.coerce(value, source="command line", from_text=is_text)
        where[key] = "cli"
    for key, value in [*values.items(), *extra.items()]:  # declared secret, or named like one
        known = registry.get(key)
        if known.masked if known is not None else looks_secret(key):
            _register_secrets(redactor, value)
    return Config(values, where, registry, redactor, file=sources.file, extra=extra)


def _register_secrets(redactor: Redactor, value: Any) -> None:
    """A secret setting's value: a string, or the strings inside a list or mapping of them. In a
    mapping that names its secret (``{username: alice, password: ...}``) only the secret-looking
    keys' values are secrets: a user name stays readable in messages."""
    if isinstance(value, dict):
        named = [item for key, item in value.items() if looks_secret(str(key))]
        value = named or list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            _register_secrets(redactor, item)
    else:
        redactor.add(value)


def _hint(close: str | None) -> str:
    return f" (did you mean {close!r}?)" if close else ""


def _warn_unknown_env(registry: SettingsRegistry, env: Mapping[str, str], warn: Callable[[str], None]) -> None:
    """An ``MGN_*`` variable that names no setting is most likely a typo: say which one was meant."""
    known = {name for setting in registry for name in setting.env_names}
    for name in sorted(env):
        if name.startswith("MGN_") and name not in known and name not in NON_SETTING_ENV:
            warn(f"environment variable {name} matches no setting{did_you_mean(name, known)}")


def early_value(setting: Setting, sources: ConfigSources) -> Any:
    """One setting by the usual precedence (file < environment < command line), before plugins
    have declared the others: ``verify.checks_dirs`` decides which plugins load. The file value's
    type is checked later, by ``resolve``, like every other."""
    values = {setting.key: sources.raw(setting.key, setting.default)}
    _apply_env(setting, sources.env, values, {})
    if setting.key in sources.cli:
        raw, is_text = sources.cli[setting.key]
        values[setting.key] = setting.coerce(raw, source="command line", from_text=is_text)
    return values[setting.key]


def configured_checks_dirs(sources: ConfigSources) -> list[tuple[str, str]]:
    """``verify.checks_dirs`` (needed before plugins, and so settings, exist) as (directory, where
    it was configured). A relative entry of a config file is relative to that file's directory,
    so ``--config guide/mgn.yaml`` works from anywhere; one from the environment or the command
    line is relative to the current directory."""
    setting = Setting("verify.checks_dirs", [], "list")
    value = early_value(setting, sources)
    if not isinstance(value, list):
        return []
    env_name = next((name for name in setting.env_names if name in sources.env), None)
    if setting.key in sources.cli:
        return [(str(item), f"{setting.key} from the command line") for item in value]
    if env_name is not None:
        return [(str(item), f"{setting.key} from {env_name}") for item in value]
    base = Path(sources.file or ".").parent
    origin = f"{setting.key} in {sources.file}"
    return [(str(base / Path(str(item)).expanduser()), origin) for item in value]


def _apply_env(setting: Setting, env: Mapping[str, str], values: dict[str, Any], where: dict[str, str]) -> None:
    for name in setting.env_names:
        if name in env:
            values[setting.key] = setting.coerce(env[name], source=f"environment {name}", from_text=True)
            where[setting.key] = f"env:{name}"
            return

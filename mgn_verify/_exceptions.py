"""The framework's errors: one root, each carrying the culprit it names.

Errors of the framework (bad config, a broken plugin, a graph that cannot run) are shown to the
user as one line and exit with code 2. Outcomes chosen by a check (``skip``, ``warn``) are a
separate family, in ``_outcomes``.

    MgnVerifyError
     ├── UsageError                 bad command-line use (unknown layer, bad duration …)
     ├── ConfigError                malformed YAML or a wrong type (.source, .key)
     ├── PluginError                a plugin failed to import or to validate (.plugin)
     ├── RegistryError              the checks cannot form a runnable graph
     │    ├── DuplicateCheckError   two checks share an id (.check_id)
     │    ├── UnknownDependencyError  a ``requires`` entry matches no check (.check_id, .requirement)
     │    ├── DependencyCycleError  the dependency graph has a cycle (.cycle, printed as a path)
     │    └── FixtureLookupError    a check asks for a fixture nobody provides (.check_id, .fixture)
     └── ReportWriteError           a report file could not be written (.path)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DependencyCycleError",
    "DuplicateCheckError",
    "FixtureLookupError",
    "MgnVerifyError",
    "PluginError",
    "RegistryError",
    "ReportWriteError",
    "UnknownDependencyError",
    "UsageError",
]


class MgnVerifyError(Exception):
    """Root of every error the framework raises; ``str(error)`` is a one-line message."""

    exit_code = 2


class UsageError(MgnVerifyError):
    """The command line asks for something that cannot be done."""


class ConfigError(MgnVerifyError):
    """A configuration source is malformed or holds a value of the wrong type."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        where = ", ".join(part for part in (source, f"key {key!r}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.key = key


class PluginError(MgnVerifyError):
    """A plugin could not be imported, or its hooks do not match the specifications."""

    def __init__(self, message: str, *, plugin: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin


class RegistryError(MgnVerifyError):
    """The registered checks do not form a runnable dependency graph."""


class DuplicateCheckError(RegistryError):
    def __init__(self, check_id: str, first: str, second: str) -> None:
        super().__init__(f"duplicate check id {check_id!r}: defined in {first} and in {second}")
        self.check_id = check_id


class UnknownDependencyError(RegistryError):
    def __init__(self, check_id: str, requirement: str, hint: str = "") -> None:
        super().__init__(f"check {check_id!r} requires {requirement!r}, which matches no check{hint}")
        self.check_id = check_id
        self.requirement = requirement


class DependencyCycleError(RegistryError):
    def __init__(self, cycle: list[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle


class FixtureLookupError(RegistryError):
    def __init__(self, check_id: str, fixture: str, available: list[str]) -> None:
        super().__init__(
            f"check {check_id!r} asks for fixture {fixture!r}, which no plugin provides"
            f" (available: {', '.join(sorted(available)) or 'none'})"
        )
        self.check_id = check_id
        self.fixture = fixture


class ReportWriteError(MgnVerifyError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write report {path}: {reason}")
        self.path = path

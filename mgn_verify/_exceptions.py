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
     ├── ReportWriteError           a report file could not be written (.path)
     └── ClientError                a GuildNet component could not be used (.component, .target)
          ├── NotConfiguredError    nothing configured for it, and nothing at the default place
          ├── UnreachableError      no answer: refused, timed out, DNS, TLS verification failed
          ├── AuthError             credentials rejected, expired or unusable
          └── ApiError              it answered, with an error (.status, .code)

A check turns a ``ClientError`` into its own result (fail, or skip when not configured); the
lifecycle commands turn it into a one-line error. Messages never carry a secret.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "ClientError",
    "ConfigError",
    "DependencyCycleError",
    "DuplicateCheckError",
    "FixtureLookupError",
    "MgnVerifyError",
    "NotConfiguredError",
    "PluginError",
    "RegistryError",
    "ReportWriteError",
    "UnknownDependencyError",
    "UnreachableError",
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
        self_loop = len(cycle) == 2 and cycle[0] == cycle[1]
        super().__init__(f"dependency cycle: {cycle[0]} requires itself" if self_loop
                         else "dependency cycle: " + " -> ".join(cycle))
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


class ClientError(MgnVerifyError):
    """A GuildNet component (Host App, Kubernetes API, RethinkDB, tailscaled, Headscale) could not
    be used. ``component`` names it (``"kubernetes"``), ``target`` where it was looked for."""

    def __init__(self, message: str, *, component: str, target: str = "") -> None:
        super().__init__(message)
        self.component = component
        self.target = target


class NotConfiguredError(ClientError):
    """Nothing is configured for the component and nothing answers at its default location."""


class UnreachableError(ClientError):
    """The component did not answer: connection refused, timeout, name resolution, TLS."""


class AuthError(ClientError):
    """The component rejected the credentials, or they are expired or unusable."""


class ApiError(ClientError):
    """The component answered with an error: ``status`` (HTTP or protocol) and ``code``."""

    def __init__(self, message: str, *, component: str, target: str = "", status: int | None = None,
                 code: str = "") -> None:
        super().__init__(message, component=component, target=target)
        self.status = status
        self.code = code

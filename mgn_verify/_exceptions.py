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
          ├── UnreachableError      no answer: refused, reset, DNS, TLS verification failed
          │    └── ClientTimeoutError  no answer in time (connecting, or to a request sent)
          ├── AuthError             credentials rejected, expired or unusable; a Host App 401
          └── ApiError              it answered, with an error (.status, .code, .details)
               ├── NotFoundError    404: no such object (or route)
               ├── ConflictError    409/422: the request cannot be done as it is (already
               │                    exists, a kubeconfig the Host App cannot connect with)
               ├── ServerError      500 (and other 5xx): it failed while acting (.reason)
               └── UnavailableError 502/503/504/429: not now (.retry_after); the Host
                                    App's DegradedError (no kube clients) is one

A check turns a ``ClientError`` into its own result (fail, or skip when not configured); the
lifecycle commands turn it into a one-line error. Messages never carry a secret.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "ClientError",
    "ClientTimeoutError",
    "ConfigError",
    "ConflictError",
    "DependencyCycleError",
    "DuplicateCheckError",
    "FixtureLookupError",
    "MgnVerifyError",
    "NotConfiguredError",
    "NotFoundError",
    "PluginError",
    "RegistryError",
    "ReportWriteError",
    "ServerError",
    "UnavailableError",
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


class ClientTimeoutError(UnreachableError):
    """No answer in time: the connection could not be made, or the request got no response."""


class ApiError(ClientError):
    """The component answered with an error: ``status`` (HTTP or protocol), ``code`` (its
    machine code, e.g. the Host App's ``cluster_rdb``) and ``details`` (structured extra
    data, never a secret)."""

    def __init__(self, message: str, *, component: str, target: str = "", status: int | None = None,
                 code: str = "", details: object = None) -> None:
        super().__init__(message, component=component, target=target)
        self.status = status
        self.code = code
        self.details = details


class NotFoundError(ApiError):
    """404: the object (or the route) does not exist."""


class ConflictError(ApiError):
    """409/422: understood, but it cannot be done as asked (the object already exists, the
    Host App cannot connect to a cluster with the kubeconfig it was given)."""


class ServerError(ApiError):
    """500 (or another 5xx that is not a gateway's): the component failed while acting.
    ``reason``: the underlying cause's own reason when it gives one (Kubernetes' ``AlreadyExists``,
    ``Invalid`` for a Workspace the Host App could not create)."""

    def __init__(self, message: str, *, component: str, target: str = "", status: int | None = None,
                 code: str = "", details: object = None, reason: str = "") -> None:
        super().__init__(message, component=component, target=target, status=status, code=code, details=details)
        self.reason = reason


class UnavailableError(ApiError):
    """502/503/504 (a gateway or the component is not ready) or 429 (slow down): try later.
    ``retry_after``: seconds the component asked to wait (429/503 ``Retry-After``), if any."""

    def __init__(self, message: str, *, component: str, target: str = "", status: int | None = None,
                 code: str = "", details: object = None, retry_after: float | None = None) -> None:
        super().__init__(message, component=component, target=target, status=status, code=code, details=details)
        self.retry_after = retry_after

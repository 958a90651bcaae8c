"""mgn-verify: pluggable, dependency-ordered, concurrent preflight checks for GuildNet.

Check authors need only this facade::

    from mgn_verify import check, fixture, parametrize, skip, warn, hookimpl

Everything else is private (``mgn_verify._*``) and may change; the names below are the
contract, pinned by ``tests/test_public_api.py``. Names are imported on first use (PEP 562),
so ``mgn --version`` does not pay for the engine.
"""

import contextlib as _contextlib
import importlib as _importlib
import typing as _typing

from ._version import __version__ as __version__

if _typing.TYPE_CHECKING:  # the same names, eagerly, for type checkers (explicit re-exports)
    from ._exceptions import (
        ApiError as ApiError,
    )
    from ._exceptions import (
        AuthError as AuthError,
    )
    from ._exceptions import (
        ClientError as ClientError,
    )
    from ._exceptions import (
        ClientTimeoutError as ClientTimeoutError,
    )
    from ._exceptions import (
        ConfigError as ConfigError,
    )
    from ._exceptions import (
        ConflictError as ConflictError,
    )
    from ._exceptions import (
        DependencyCycleError as DependencyCycleError,
    )
    from ._exceptions import (
        DuplicateCheckError as DuplicateCheckError,
    )
    from ._exceptions import (
        FixtureLookupError as FixtureLookupError,
    )
    from ._exceptions import (
        MgnVerifyError as MgnVerifyError,
    )
    from ._exceptions import (
        NotConfiguredError as NotConfiguredError,
    )
    from ._exceptions import (
        NotFoundError as NotFoundError,
    )
    from ._exceptions import (
        PluginError as PluginError,
    )
    from ._exceptions import (
        RegistryError as RegistryError,
    )
    from ._exceptions import (
        ReportWriteError as ReportWriteError,
    )
    from ._exceptions import (
        ServerError as ServerError,
    )
    from ._exceptions import (
        UnavailableError as UnavailableError,
    )
    from ._exceptions import (
        UnknownDependencyError as UnknownDependencyError,
    )
    from ._exceptions import (
        UnreachableError as UnreachableError,
    )
    from ._exceptions import (
        UsageError as UsageError,
    )
    from ._exitcodes import (
        ExitCode as ExitCode,
    )
    from ._marks import (
        check as check,
    )
    from ._marks import (
        fixture as fixture,
    )
    from ._marks import (
        parametrize as parametrize,
    )
    from ._model import (
        LAYERS as LAYERS,
    )
    from ._model import (
        CheckSpec as CheckSpec,
    )
    from ._model import (
        Result as Result,
    )
    from ._model import (
        Severity as Severity,
    )
    from ._model import (
        Status as Status,
    )
    from ._model import (
        Waiver as Waiver,
    )
    from ._outcomes import (
        skip as skip,
    )
    from ._outcomes import (
        warn as warn,
    )
    from ._registry import (
        Registry as Registry,
    )
    from ._report import (
        RunPlan as RunPlan,
    )
    from ._report import (
        RunReport as RunReport,
    )
    from ._reporting import (
        ReporterContext as ReporterContext,
    )
    from ._reporting import (
        ReporterRegistry as ReporterRegistry,
    )
    from ._rewrite import (
        register_assert_rewrite as register_assert_rewrite,
    )
    from .config import (
        Config as Config,
    )
    from .config import (
        SettingsRegistry as SettingsRegistry,
    )
    from .hookspecs import (
        hookimpl as hookimpl,
    )
    from .hookspecs import (
        hookspec as hookspec,
    )

_EXPORTS = {
    "._exceptions": ("ApiError", "AuthError", "ClientError", "ClientTimeoutError", "ConfigError", "ConflictError",
                     "DependencyCycleError", "DuplicateCheckError", "FixtureLookupError", "MgnVerifyError",
                     "NotConfiguredError", "NotFoundError", "PluginError", "RegistryError", "ReportWriteError",
                     "ServerError", "UnavailableError", "UnknownDependencyError", "UnreachableError", "UsageError"),
    "._exitcodes": ("ExitCode",),
    "._marks": ("check", "fixture", "parametrize"),
    "._model": ("LAYERS", "CheckSpec", "Result", "Severity", "Status", "Waiver"),
    "._outcomes": ("skip", "warn"),
    "._registry": ("Registry",),
    "._report": ("RunPlan", "RunReport"),
    ".config": ("Config", "SettingsRegistry"),
    ".hookspecs": ("hookimpl", "hookspec"),
    "._reporting": ("ReporterContext", "ReporterRegistry"),
    "._rewrite": ("register_assert_rewrite",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> _typing.Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mgn_verify' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    if callable(value) and getattr(value, "__module__", "").startswith("mgn_verify."):
        with _contextlib.suppress(AttributeError, TypeError):  # public path in reprs, as httpx does
            value.__module__ = "mgn_verify"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

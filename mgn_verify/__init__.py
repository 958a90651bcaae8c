"""mgn-verify: pluggable, dependency-ordered, concurrent preflight checks for GuildNet.

Check authors need only this facade::

    from mgn_verify import check, fixture, parametrize, skip, warn, hookimpl

Everything else is private (``mgn_verify._*``) and may change; the names below are the
contract, pinned by ``tests/test_public_api.py``.
"""

from ._exceptions import (
    ConfigError,
    DependencyCycleError,
    DuplicateCheckError,
    FixtureLookupError,
    MgnVerifyError,
    PluginError,
    RegistryError,
    ReportWriteError,
    UnknownDependencyError,
    UsageError,
)
from ._exitcodes import ExitCode
from ._marks import check, fixture, parametrize
from ._model import LAYERS, CheckSpec, Result, Severity, Status, Waiver
from ._outcomes import skip, warn
from ._registry import Registry
from ._report import RunPlan, RunReport
from ._version import __version__
from .config import Config, SettingsRegistry
from .hookspecs import hookimpl, hookspec
from .reporters import ReporterContext, ReporterRegistry

__all__ = [
    "LAYERS",
    "CheckSpec",
    "Config",
    "ConfigError",
    "DependencyCycleError",
    "DuplicateCheckError",
    "ExitCode",
    "FixtureLookupError",
    "MgnVerifyError",
    "PluginError",
    "Registry",
    "RegistryError",
    "ReportWriteError",
    "ReporterContext",
    "ReporterRegistry",
    "Result",
    "RunPlan",
    "RunReport",
    "SettingsRegistry",
    "Severity",
    "Status",
    "UnknownDependencyError",
    "UsageError",
    "Waiver",
    "__version__",
    "check",
    "fixture",
    "hookimpl",
    "hookspec",
    "parametrize",
    "skip",
    "warn",
]

# Show the public path in reprs and tracebacks (httpx does the same).
for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and not isinstance(_obj, str | tuple):
        try:
            _obj.__module__ = "mgn_verify"
        except (AttributeError, TypeError):
            pass
del _name, _obj

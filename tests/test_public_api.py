"""The facade is the contract: adding or removing a public name must be a deliberate change."""

import types

import pytest

import mgn_verify

EXPECTED = [
    "LAYERS", "ApiError", "AuthError", "CheckSpec", "ClientError", "ClientTimeoutError", "Config", "ConfigError",
    "ConflictError", "DependencyCycleError", "DuplicateCheckError", "ExitCode", "FixtureLookupError",
    "MgnVerifyError", "NotConfiguredError", "NotFoundError", "PluginError", "Registry", "RegistryError",
    "ReportWriteError", "ReporterContext", "ReporterRegistry", "Result", "RunPlan", "RunReport", "ServerError",
    "SettingsRegistry", "Severity", "Status", "UnavailableError", "UnknownDependencyError", "UnreachableError",
    "UsageError", "Waiver", "__version__", "check", "fixture",
    "hookimpl", "hookspec", "parametrize", "register_assert_rewrite", "skip", "warn",
]


def test_all_is_pinned() -> None:
    assert sorted(mgn_verify.__all__) == sorted(EXPECTED)


def test_all_names_exist_and_nothing_else_is_public() -> None:
    for name in EXPECTED:
        assert getattr(mgn_verify, name) is not None
    # Submodules (config, cli, …) appear once imported; pytest's assertion rewriting adds "@py_*".
    public = {name for name in dir(mgn_verify) if not name.startswith(("_", "@"))
              and not isinstance(getattr(mgn_verify, name), types.ModuleType)}
    assert public == set(EXPECTED) - {"__version__"}
    with pytest.raises(AttributeError, match="no attribute 'chekc'"):
        mgn_verify.chekc  # noqa: B018


def test_public_objects_show_the_public_module() -> None:
    assert mgn_verify.Status.__module__ == "mgn_verify"
    assert mgn_verify.check.__module__ == "mgn_verify"
    assert repr(mgn_verify.Status.PASS) == "<Status.PASS: 'pass'>"


def test_statuses_are_exactly_the_documented_strings() -> None:
    assert [str(s) for s in mgn_verify.Status] == ["pass", "warn", "fail", "error", "skip", "blocked", "waived"]

"""The registry of checks and fixtures that plugins fill, and its validation."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._collect import FixtureDef, collect_module, fixture_from_function, specs_from_function
from ._exceptions import DuplicateCheckError, FixtureLookupError, RegistryError
from ._model import CheckSpec
from ._text import did_you_mean

__all__ = ["Registry"]


class Registry:
    """Every known check (by id) and fixture (by name). Plugins add to it through
    ``mgn_register_checks`` / ``mgn_register_fixtures``; module-level marks are added for them."""

    def __init__(self) -> None:
        self.checks: dict[str, CheckSpec] = {}
        self.fixtures: dict[str, FixtureDef] = {}
        #: The plugin whose hooks or module are being registered, for error messages.
        self.current_plugin = ""

    def add_check(self, func: Callable[..., Any]) -> list[CheckSpec]:
        """Register a check function (``@check``-marked or not); returns its specs."""
        specs = specs_from_function(func, self.current_plugin)
        for spec in specs:
            self.add_spec(spec)
        return specs

    def add_spec(self, spec: CheckSpec) -> None:
        existing = self.checks.get(spec.id)
        if existing is not None:
            raise DuplicateCheckError(spec.id, _where(existing), _where(spec))
        self.checks[spec.id] = spec

    def add_fixture(self, func: Callable[..., Any], name: str | None = None) -> None:
        self._add_fixture_def(fixture_from_function(func, self.current_plugin, name))

    def _add_fixture_def(self, fixture: FixtureDef) -> None:
        existing = self.fixtures.get(fixture.name)
        if existing is not None:
            raise RegistryError(f"duplicate fixture {fixture.name!r}: defined by plugin "
                                f"{existing.plugin!r} and by plugin {fixture.plugin!r}")
        self.fixtures[fixture.name] = fixture

    def add_module(self, module: ModuleType, plugin: str, *, undecorated: bool = False) -> None:
        specs, fixtures = collect_module(module, plugin, undecorated=undecorated)
        for fixture in fixtures:
            self._add_fixture_def(fixture)
        for spec in specs:
            self.add_spec(spec)

    def validate_fixtures(self, builtin: set[str]) -> None:
        """Every parameter of every check, and of every fixture, names a known fixture."""
        known = set(self.fixtures) | builtin
        for spec in self.checks.values():
            for name in spec.argnames:
                if name not in known:
                    raise FixtureLookupError(spec.id, name, sorted(known))
        for fixture in self.fixtures.values():
            for name in fixture.argnames:
                if name not in known:
                    raise FixtureLookupError(f"fixture {fixture.name}", name, sorted(known))

    def suggest(self, check_id: str) -> str:
        return did_you_mean(check_id, self.checks)


def _where(spec: CheckSpec) -> str:
    return f"plugin {spec.plugin!r} ({spec.source})" if spec.plugin else spec.source

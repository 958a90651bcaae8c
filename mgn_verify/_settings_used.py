"""Which settings a check reads, for ``mgn verify explain`` and ``mgn verify list --json``.

Found, not declared: the string constants of the check's code that name a declared setting
(``config["kubernetes.latency_warn"]``), following the functions of its own package it calls and
the fixtures it asks for, transitively. Nothing runs; only code objects are read.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Mapping
from typing import Any

from ._collect import FixtureDef

__all__ = ["settings_read"]

_MAX_FUNCTIONS = 200  # a bound on the walk; check code is small


def settings_read(func: Callable[..., Any], argnames: tuple[str, ...], fixtures: Mapping[str, FixtureDef],
                  known: Container[str]) -> list[str]:
    """The declared settings ``func`` (a check) may read, sorted."""
    package = (getattr(func, "__module__", "") or "").split(".")[0]
    found: set[str] = set()
    seen: set[int] = set()
    todo: list[Any] = [func, *(fixtures[name].func for name in argnames if name in fixtures)]
    while todo and len(seen) < _MAX_FUNCTIONS:
        current = todo.pop()
        code = getattr(current, "__code__", None)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        scope = getattr(current, "__globals__", {})
        names: set[str] = set()
        for const, used in _walk(code):
            if isinstance(const, str) and const in known:
                found.add(const)
            names.update(used)
        # ``helpers.thresholds(config)``: names are looked up in the scope and in its own modules.
        modules = [scope[n] for n in names if isinstance(scope.get(n), types.ModuleType)
                   and scope[n].__name__.split(".")[0] == package]
        for name in names:
            for obj in (scope.get(name), *(getattr(m, name, None) for m in modules)):
                todo.extend(_own_callables(obj, package, fixtures, name, names))
    return sorted(found)


def _walk(code: types.CodeType) -> list[tuple[object, tuple[str, ...]]]:
    """(constant, names) pairs of ``code`` and the code objects nested in it (lambdas, closures)."""
    out: list[tuple[object, tuple[str, ...]]] = [(None, code.co_names)]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out.extend(_walk(const))
        else:
            out.append((const, ()))
    return out


def _own_callables(obj: object, package: str, fixtures: Mapping[str, FixtureDef], name: str,
                   names: set[str]) -> list[Any]:
    """The function ``obj`` when it belongs to the check's own package (for a class of it: its
    methods that the code names, e.g. ``Client.from_config``), or the fixture ``name``."""
    if isinstance(obj, types.FunctionType) and (obj.__module__ or "").split(".")[0] == package:
        return [obj]
    if isinstance(obj, type) and obj.__module__.split(".")[0] == package:
        found = []
        for attr in names:
            member = obj.__dict__.get(attr)
            member = getattr(member, "__func__", member)  # classmethod / staticmethod
            if isinstance(member, types.FunctionType):
                found.append(member)
        return found
    if name in fixtures:
        return [fixtures[name].func]
    return []

"""Collection: turning a plugin module's marked functions into ``CheckSpec`` and ``FixtureDef``.

A module's own functions are collected (not ones it imported). ``@check`` functions always
count; in pytest-style ``check_*.py`` files every function named ``check_*`` counts too.

Id of a check without an explicit ``id``: ``<module>.<function>``, where ``<module>`` is the
last segment of the module name and both lose a leading ``check_``:
``check_acme.py::check_tmp_writable`` → ``acme.tmp_writable`` (layer ``acme``).

An id, given or derived, is segments of ``[A-Za-z0-9_-]`` joined by single dots: ``*``, ``?``
and ``[`` would read as globs on ``--check`` and in ``requires``, and ``base[target]`` is the
syntax of a parametrized instance (those ids are built here, from a valid base id).
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._marks import Mark, get_marks
from ._model import CheckSpec, Severity
from ._outcomes import skip

__all__ = ["FixtureDef", "collect_module", "fixture_from_function", "specs_from_function"]

_DEFAULTS: dict[str, Any] = {
    "id": None, "title": None, "layer": None, "requires": (), "severity": Severity.CRITICAL,
    "timeout": None, "retries": 0, "retry_delay": 0.5, "tags": (), "remediation": "", "description": None,
    "gates": (), "waivable": True,
}
_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
ID_RULE = "an id is segments of letters, digits, '_' and '-' joined by single dots, e.g. 'acme.disk.free'"


@dataclass(frozen=True, slots=True)
class FixtureDef:
    """One fixture: created once per run, on first use; may ask for other fixtures."""

    name: str
    func: Callable[..., Any]
    argnames: tuple[str, ...]
    plugin: str
    source: str


def _strip(name: str) -> str:
    return name[len("check_"):] if name.startswith("check_") else name


def _source(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else getattr(func, "__qualname__", "?")


def _required_args(func: Callable[..., Any]) -> tuple[str, ...]:
    """Parameters without a default are fixtures (or parametrize names)."""
    code = getattr(func, "__code__", None)
    if code is None or inspect.ismethod(func):  # callables that are not plain functions
        params = inspect.signature(func).parameters.values()
        return tuple(p.name for p in params if p.default is inspect.Parameter.empty
                     and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    # Fast path (collection of 10,000 checks): read the code object instead of a Signature.
    positional = code.co_varnames[: code.co_argcount]
    defaults = len(getattr(func, "__defaults__", None) or ())
    keyword_only = code.co_varnames[code.co_argcount: code.co_argcount + code.co_kwonlyargcount]
    kw_defaults = getattr(func, "__kwdefaults__", None) or {}
    required = positional[: len(positional) - defaults]
    return (*required, *(name for name in keyword_only if name not in kw_defaults))


def specs_from_function(func: Callable[..., Any], plugin: str, *, empty_skips: bool = False) -> list[CheckSpec]:
    """One spec per parametrized instance (one spec when not parametrized). An empty parameter
    set gives one skipped check when ``empty_skips`` (a module's own checks, as pytest does), and
    none otherwise: a plugin registering checks at run time for what it found (clusters, routes)
    had nothing to check."""
    marks = get_marks(func, "check")
    opts = {**_DEFAULTS, **(marks[-1].kwargs if marks else {})}
    module = (getattr(func, "__module__", None) or "checks").rsplit(".", 1)[-1]
    base_id = opts["id"] or f"{_strip(module)}.{_strip(func.__name__)}"
    _validate_id(base_id, func, derived=not opts["id"])
    _reject_generator(base_id, func)
    doc = inspect.getdoc(func) or ""
    title = opts["title"] or (doc.splitlines()[0] if doc else base_id)
    argnames = _required_args(func)
    common = {
        "title": title, "layer": opts["layer"] or base_id.split(".", 1)[0], "func": func,
        "base_id": base_id, "requires": opts["requires"], "severity": opts["severity"],
        "timeout": opts["timeout"], "retries": opts["retries"], "retry_delay": opts["retry_delay"],
        "tags": opts["tags"], "remediation": opts["remediation"], "description": opts["description"] or doc,
        "is_async": inspect.iscoroutinefunction(func), "plugin": plugin, "source": _source(func),
        "gates": opts["gates"], "waivable": opts["waivable"],
    }
    param_marks = get_marks(func, "parametrize")
    if not param_marks:
        return [CheckSpec(id=base_id, argnames=argnames, **common)]
    _validate_param_names(base_id, param_marks, argnames)
    empty = next((m for m in param_marks if not m.kwargs["rows"]), None)
    if empty is not None and not empty_skips:  # registered at run time: nothing to check, no check
        return []
    if empty is not None:  # as pytest: one skipped item (no fixtures, no requires), not a vanished check
        message = f"parametrize {','.join(empty.kwargs['names'])!r} got an empty parameter set"
        return [CheckSpec(id=base_id, argnames=(), **{**common, "func": _skipper(message), "is_async": False,
                                                      "requires": ()})]
    param_names = {n for m in param_marks for n in m.kwargs["names"]}
    fixtures = tuple(a for a in argnames if a not in param_names)
    specs: list[CheckSpec] = []
    seen: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(list(zip(m.kwargs["ids"], m.kwargs["rows"], strict=True))
                                     for m in param_marks)):
        params: dict[str, Any] = {}
        for mark, (_, row) in zip(param_marks, combo, strict=True):
            params.update(zip(mark.kwargs["names"], row, strict=True))
        target = "-".join(label for label, _ in combo)
        requires = _instance_requires(base_id, opts["requires"], params)
        if target in seen:
            _reject_duplicate(base_id, target, seen[target], params)
        seen[target] = params
        specs.append(CheckSpec(id=f"{base_id}[{target}]", argnames=fixtures, params=params,
                               target=target, **{**common, "requires": requires}))
    return specs


def _validate_id(check_id: object, func: Callable[..., Any], *, derived: bool) -> None:
    if not isinstance(check_id, str):
        raise TypeError(f"check id must be a string, got {check_id!r}")
    if _ID.fullmatch(check_id):
        return
    if derived:
        raise ValueError(f"the id {check_id!r} derived from {func.__name__!r} is not valid: {ID_RULE}; "
                         "give one with @check(id=...)")
    raise ValueError(f"check id {check_id!r} is not valid: {ID_RULE}")


def _skipper(message: str) -> Callable[[], None]:
    def empty_parameter_set() -> None:
        skip(message)

    return empty_parameter_set


def _reject_duplicate(base_id: str, target: str, first: dict[str, Any], second: dict[str, Any]) -> None:
    """Two instances with one id: a duplicate value, or labels that coincide (``1`` and ``"1"``)."""
    same = repr(first) == repr(second)  # repr: == of an arbitrary value may raise or mislead
    why = f"duplicate value {target!r}" if same else f"values {first!r} and {second!r} have the same label"
    raise ValueError(f"check {base_id!r}: parametrize gives the id '{base_id}[{target}]' twice ({why}); "
                     "give ids=[...]")


def _reject_generator(check_id: str, func: Callable[..., Any]) -> None:
    """Calling a generator function runs none of its body: such a check would always pass."""
    kind = ("an async generator function" if inspect.isasyncgenfunction(func)
            else "a generator function" if inspect.isgeneratorfunction(func) else None)
    if kind:
        raise ValueError(f"check {check_id!r} is {kind} (it yields): a check returns; "
                         "put setup/teardown in a @fixture")


def _instance_requires(check_id: str, requires: tuple[str, ...], params: dict[str, Any]) -> tuple[str, ...]:
    """``requires="kubernetes.api.reachable[{cluster}]"`` names the instance for the same value:
    a broken cluster blocks only its own checks. A formatted entry is matched literally."""
    if not any("{" in entry for entry in requires):
        return requires
    out = []
    for entry in requires:
        if "{" not in entry:
            out.append(entry)
            continue
        try:
            # Literal: an existing id wins over a glob reading of its brackets (see _graph).
            out.append(entry.format(**params))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"check {check_id!r}: requires {entry!r} names {exc}, "
                             "which is not a parametrize name") from None
    return tuple(out)


def _validate_param_names(check_id: str, marks: list[Mark], argnames: tuple[str, ...]) -> None:
    for mark in marks:
        for name in mark.kwargs["names"]:
            if name not in argnames:
                raise ValueError(f"check {check_id!r}: parametrize names {name!r}, "
                                 "which is not a parameter of the function")


def fixture_from_function(func: Callable[..., Any], plugin: str, name: str | None = None) -> FixtureDef:
    marks = get_marks(func, "fixture")
    declared = name or (marks[-1].kwargs.get("name") if marks else None) or func.__name__
    return FixtureDef(declared, func, _required_args(func), plugin, _source(func))


def collect_module(module: ModuleType, plugin: str, *, undecorated: bool = False
                   ) -> tuple[list[CheckSpec], list[FixtureDef]]:
    """The checks and fixtures a module defines itself, in definition order."""
    specs: list[CheckSpec] = []
    fixtures: list[FixtureDef] = []
    for name, obj in list(vars(module).items()):
        if not callable(obj) or getattr(obj, "__module__", None) != module.__name__:
            continue
        if get_marks(obj, "fixture"):
            fixtures.append(fixture_from_function(obj, plugin))
        elif get_marks(obj, "check") or (undecorated and name.startswith("check_")
                                         and inspect.isfunction(obj)):
            specs.extend(specs_from_function(obj, plugin, empty_skips=True))
    return specs, fixtures

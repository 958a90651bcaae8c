"""Marks: the decorators check authors use. They only attach data to the function.

``@check``, ``@parametrize`` and ``@fixture`` record a frozen ``Mark`` on the function and return
the very same function, so a check stays a plain callable (handy in unit tests) and the
decorators compose in any order, as pytest's marks do. What a mark *means* is decided at
collection time (``_collect``), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from ._model import Severity

__all__ = ["Mark", "check", "fixture", "get_marks", "parametrize"]

F = TypeVar("F", bound=Callable[..., Any])

MARKS_ATTR = "__mgn_marks__"


@dataclass(frozen=True, slots=True)
class Mark:
    """One decorator's data: ``name`` is ``check``, ``parametrize`` or ``fixture``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _add_mark(func: F, mark: Mark) -> F:
    if not callable(func):
        raise TypeError(f"@{mark.name} must decorate a function, not {type(func).__name__}")
    marks: list[Mark] = list(getattr(func, MARKS_ATTR, ()))
    marks.append(mark)
    setattr(func, MARKS_ATTR, marks)
    return func


def get_marks(obj: object, name: str) -> list[Mark]:
    """The marks called ``name`` on ``obj``, in the order they were applied (innermost first)."""
    return [m for m in getattr(obj, MARKS_ATTR, ()) if isinstance(m, Mark) and m.name == name]


def _as_tuple(value: str | Iterable[str] | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError(f"{what} must be a list of strings")
    return items


@overload
def check(__func: F) -> F: ...
@overload
def check(
    __func: None = None, *, id: str | None = None, title: str | None = None,
    layer: str | None = None, requires: str | Iterable[str] | None = None,
    severity: str | Severity = Severity.CRITICAL, timeout: float | None = None,
    retries: int = 0, retry_delay: float = 0.5, tags: str | Iterable[str] | None = None,
    remediation: str = "", description: str | None = None,
    gates: str | Iterable[str] | None = None, waivable: bool = True,
) -> Callable[[F], F]: ...
def check(
    __func: F | None = None, *, id: str | None = None, title: str | None = None,
    layer: str | None = None, requires: str | Iterable[str] | None = None,
    severity: str | Severity = Severity.CRITICAL, timeout: float | None = None,
    retries: int = 0, retry_delay: float = 0.5, tags: str | Iterable[str] | None = None,
    remediation: str = "", description: str | None = None,
    gates: str | Iterable[str] | None = None, waivable: bool = True,
) -> F | Callable[[F], F]:
    """Declare a function as a check.

    :param id: stable dotted id, e.g. ``"system.disk.free"``: segments of letters, digits, ``_``
        and ``-`` joined by single dots (checked when collected); defaults to
        ``<module>.<function name without check_>``.
    :param title: one-line human title; defaults to the first docstring line.
    :param layer: defaults to the first segment of the id.
    :param requires: ids or id globs of checks that must pass first.
    :param severity: ``critical`` (a failure is ``fail``), ``warning`` (``warn``) or ``info``.
    :param timeout: seconds per attempt; default from config ``verify.timeout`` (10 s).
    :param retries: extra attempts after a ``fail``/``error``, waiting ``retry_delay * 2**n``.
    :param remediation: the exact command or setting that fixes a failure.
    :param gates: the preflight gates (``workspace.create``, ``install`` ...) the check joins.
    :param waivable: ``False`` when overriding a failure could only lead to a failed operation:
        ``--ignore-preflight-errors`` and waivers then leave it ``fail``/``error``.
    """
    try:
        sev = Severity(severity)
    except ValueError:
        raise ValueError(f"severity must be one of critical, warning, info; got {severity!r}") from None
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    if retries < 0 or retry_delay < 0:
        raise ValueError("retries and retry_delay must not be negative")
    if not isinstance(waivable, bool):  # waivable="no" is truthy: the safety flag would be lost
        raise TypeError(f"waivable must be True or False, got {waivable!r}")
    gate_names = _as_tuple(gates, "gates")
    if not all(name.strip() for name in gate_names):
        raise ValueError(f"gate names must not be blank, got {list(gate_names)!r}")
    mark = Mark("check", {
        "id": id, "title": title, "layer": layer, "requires": _as_tuple(requires, "requires"),
        "severity": sev, "timeout": timeout, "retries": retries, "retry_delay": retry_delay,
        "tags": _as_tuple(tags, "tags"), "remediation": remediation, "description": description,
        "gates": gate_names, "waivable": waivable,
    })
    if __func is not None:
        return _add_mark(__func, mark)

    def decorate(func: F) -> F:
        return _add_mark(func, mark)

    return decorate


def parametrize(
    argnames: str | Sequence[str], values: Iterable[Any], *, ids: Sequence[str] | None = None
) -> Callable[[F], F]:
    """Run the check once per value: ``@parametrize("port", [6443, 10250])`` gives the ids
    ``<id>[6443]`` and ``<id>[10250]``. Several names (``"host,port"``) take tuples. Stacked
    ``parametrize`` marks multiply, as in pytest. No values: one check with the base id, skipped
    (as pytest does); two values with one label: an error at collection (give ``ids=``)."""
    names = tuple(n.strip() for n in argnames.split(",")) if isinstance(argnames, str) else tuple(argnames)
    if not names or not all(names):
        raise ValueError("parametrize needs at least one argument name")
    rows: list[tuple[Any, ...]] = []
    for value in values:
        row = tuple(value) if len(names) > 1 else (value,)
        if len(row) != len(names):
            raise ValueError(f"parametrize({','.join(names)}): value {value!r} has {len(row)} items")
        rows.append(row)
    if ids is not None and len(ids) != len(rows):
        raise ValueError("parametrize: ids must have one entry per value")
    labels = list(ids) if ids is not None else ["-".join(_label(v) for v in row) for row in rows]
    return lambda func: _add_mark(func, Mark("parametrize", {"names": names, "rows": rows, "ids": labels}))


def _label(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if value is None else str(value)


@overload
def fixture(__func: F) -> F: ...
@overload
def fixture(__func: None = None, *, name: str | None = None) -> Callable[[F], F]: ...
def fixture(__func: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Declare a fixture: checks receive its value by naming it as a parameter.

    A fixture is created lazily, once per run, the first time a check asks for it; it may itself
    ask for other fixtures. A generator fixture yields its value and is torn down (the code
    after ``yield`` runs) at the end of the run. If it raises, every check using it is
    ``error`` with the fixture's message.
    """
    if __func is not None:
        return _add_mark(__func, Mark("fixture", {"name": name}))
    return lambda func: _add_mark(func, Mark("fixture", {"name": name}))

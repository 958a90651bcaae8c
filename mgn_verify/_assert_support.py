"""What a rewritten ``assert`` calls: pytest's assertion helpers, imported only when needed.

pytest's rewriter makes a module import ``_pytest.assertion.rewrite as @pytest_ar``;
``mgn_verify._rewrite`` points that import here instead. A passing assert touches no helper, so
a check that passes never imports pytest's internals (about 120 ms); the first helper a failing
assert needs imports pytest's module and is forwarded to it (module ``__getattr__``, PEP 562).

Of the allowed helpers (``HELPERS``), four are our own, and differ from pytest's on purpose:
the operand reprs are cut only *after* the process's secrets are redacted (pytest's
``saferepr`` keeps both ends of a long repr, and half a long token would escape redaction); the
custom message of ``assert x, msg`` is kept verbatim; and a failed comparison adds pytest's
detail of it (``Differing items: {'b': 3} != {'b': 2}``, a string diff) from
``util.assertrepr_compare`` asked with a quiet stand-in for pytest's Config (``_QuietConfig``:
verbosity 0, no colour; with ``CI`` set pytest adds a full diff), bounded as pytest bounds it,
never from pytest's comparison plugins (``util._reprcompare``, set only inside a pytest run):
a check explains itself the same way under ``mgn verify`` and ``pytest --mgn-verify``. pytest
cuts the values it formats there, so that detail is dropped whenever an operand (or the
detail) holds a registered secret. The two of pytest's assertion-pass hook are inert stubs;
the last two are forwarded to pytest.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from types import MethodType
from typing import Any

from .config.redact import holds_secret, safe_repr

__all__: list[str] = []  # nothing public: rewritten code reaches these by attribute

PYTEST_REWRITE = "_pytest.assertion.rewrite"
#: pytest's ``DEFAULT_REPR_MAX_SIZE``: the longest operand repr an explanation shows.
REPR_MAX = 240
PYTEST_UTIL = "_pytest.assertion.util"
#: pytest's truncation of an explanation when not verbose (``DEFAULT_MAX_LINES``/``_CHARS``).
DETAIL_LINES = 8
DETAIL_CHARS = DETAIL_LINES * 80
#: What replaces the comparison detail when an operand holds a secret.
SECRET_DETAIL = "(no diff: an operand holds a secret)"
#: pytest's advice to pass ``-v``/``-vv``: no such option reaches a check's comparison.
_ADVICE = re.compile(r"(^\s*Use -v to get more diff$)|(,? use -vv? to show$)")
#: How deep pytest may compare dataclass/attrs/namedtuple fields before we give up the detail.
_FIELDS_DEPTH = 8


def _saferepr(obj: object) -> str:
    if isinstance(obj, MethodType):  # as pytest: a bound method by its name
        return obj.__name__
    # pytest's explanation format reserves newlines: escape them as pytest does
    return safe_repr(obj, REPR_MAX).replace("\n", "\\n")


def _format_assertmsg(obj: object) -> str:
    """The custom message of ``assert x, msg``, newlines kept (pytest's format: ``\\n~``)."""
    text = obj if isinstance(obj, str) else safe_repr(obj, REPR_MAX)
    text = text.replace("\n", "\n~").replace("%", "%%")
    return text if isinstance(obj, str) else text.replace("\\n", "\n~")


def _format_explanation(explanation: str) -> str:
    """pytest's explanation, the custom message of ``assert x, msg`` kept verbatim (pytest
    indents its continuation lines): the first ``\\n>assert `` ends it, as its own newlines
    were encoded ``\\n~`` by ``_format_assertmsg``."""
    pytest_format: Callable[[str], str] = importlib.import_module(PYTEST_REWRITE)._format_explanation
    custom, glue, rest = explanation.partition("\n>assert ")
    if not glue:
        return pytest_format(explanation)
    return custom.replace("\n~", "\n") + "\n" + pytest_format("assert " + rest)


def _call_reprcompare(ops: Sequence[str], results: Sequence[bool], expls: Sequence[str],
                      each_obj: Sequence[object]) -> str:
    """The explanation of the first comparison of a chain that failed (``2 >= 3``), with
    pytest's detail of it (``Differing items: ...``) on ``\n~`` lines, as pytest joins them."""
    index = len(results) - 1
    for at, result in enumerate(results):
        try:
            failed = not result
        except Exception:  # an object whose truth value raises: this is the culprit
            failed = True
        if failed:
            index = at
            break
    detail = _comparison_detail(ops[index], each_obj[index], each_obj[index + 1])
    # the result is %-formatted with the operands' reprs: the detail's own % are literal
    return expls[index] + "".join("\n~" + line.replace("\n", "\\n").replace("%", "%%") for line in detail)


class _QuietConfig:
    """All ``assertrepr_compare`` asks of pytest's Config (pytest 8 and 9): verbosity 0 and
    the terminal writer's highlighter, which colours nothing."""

    def get_verbosity(self, verbosity_type: str | None = None) -> int:
        return 0

    def get_terminal_writer(self) -> _QuietConfig:
        return self

    def _highlight(self, source: str, lexer: str = "python") -> str:
        return source


def _comparison_detail(op: str, left: object, right: object) -> list[str]:
    """pytest's detail of ``left op right`` without its summary line (ours, from redacted reprs,
    is the explanation already) and its ``-v`` advice, bounded as pytest bounds it; a blank
    line first. Empty where pytest has none, its API changed, or anything failed."""
    try:
        compare: Callable[..., list[str] | None] = importlib.import_module(PYTEST_UTIL).assertrepr_compare
        lines = compare(_QuietConfig(), op, left, right)
        if not lines:
            return []
        lines = [text for line in lines[1:] if (text := _ADVICE.sub("", line)) or not line]
        if not any(lines):
            return []
        lines = _bounded(lines)
        if any(holds_secret(text) for text in [*_shown_texts(left), *_shown_texts(right), *lines]):
            return ["", SECRET_DETAIL]  # pytest cut values: half a secret would escape redaction
        return lines
    except Exception:  # a broken __repr__/__eq__, a pytest without this API: the plain explanation
        return []


def _shown_texts(obj: object, depth: int = 0) -> Iterator[str]:
    """Every text of ``obj`` pytest's detail may show, uncut: its repr, a string's own text (a
    diff shows it raw) and, as pytest compares them field by field, a dataclass's, attrs
    class's or namedtuple's field values' (a field may be left out of its repr)."""
    if depth > _FIELDS_DEPTH:
        raise RecursionError("fields nested too deep to check for secrets")
    yield repr(obj)
    if isinstance(obj, str):
        yield obj
    for value in _field_values(obj):
        yield from _shown_texts(value, depth + 1)


def _field_values(obj: object) -> list[object]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [getattr(obj, field.name) for field in dataclasses.fields(obj)]
    attributes = getattr(type(obj), "__attrs_attrs__", None)
    if attributes is not None:
        return [getattr(obj, attribute.name) for attribute in attributes]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return list(obj)
    return []


def _bounded(lines: list[str]) -> list[str]:
    """At most ``DETAIL_LINES`` lines and ``DETAIL_CHARS`` characters, then ``(N lines
    hidden)``, as pytest truncates a non-verbose explanation (with its slack of 2 lines, 70
    characters: hiding less would print a longer notice than what it hides)."""
    if len(lines) <= DETAIL_LINES + 2 and sum(map(len, lines)) <= DETAIL_CHARS + 70:
        return lines
    kept: list[str] = []
    size = 0
    for line in lines[:DETAIL_LINES]:
        if size + len(line) > DETAIL_CHARS:
            kept.append(line[:DETAIL_CHARS - size])
            break
        kept.append(line)
        size += len(line)
    hidden = len(lines) - len(kept) + (len(kept[-1]) < len(lines[len(kept) - 1]))
    kept[-1] += "..."
    return [*kept, "", f"...Full output truncated ({hidden} line{'' if hidden == 1 else 's'} hidden)"]


def _check_if_assertion_pass_impl() -> bool:
    """No ``pytest_assertion_pass`` hook outside pytest (emitted only with that hook enabled)."""
    return False


def _call_assertion_pass(lineno: int, orig: str, expl: str) -> None:
    """Never called: see ``_check_if_assertion_pass_impl``."""


#: Every helper rewritten code may call (pytest 9's rewriter: ``self.helper(...)``). A module
#: whose rewritten code calls anything else is compiled plain instead (``mgn_verify._rewrite``).
HELPERS = frozenset({"_saferepr", "_format_assertmsg", "_format_explanation", "_call_reprcompare",
                     "_should_repr_global_name", "_format_boolop",
                     "_check_if_assertion_pass_impl", "_call_assertion_pass"})
#: The allowed helpers that are pytest's own, imported from it on first use.
_FORWARDED = frozenset({"_should_repr_global_name", "_format_boolop"})


def __getattr__(name: str) -> Any:
    # only the allowed helpers: any other probe (`__wrapped__`, a plugin marker looked up on
    # every module global, a helper of a newer pytest) must neither import pytest nor succeed
    if name not in _FORWARDED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(PYTEST_REWRITE), name)

"""What a rewritten ``assert`` calls: pytest's assertion helpers, imported only when needed.

pytest's rewriter makes a module import ``_pytest.assertion.rewrite as @pytest_ar``;
``mgn_verify._rewrite`` points that import here instead. A passing assert touches no helper, so
a check that passes never imports pytest's internals (about 120 ms); the first helper a failing
assert needs imports pytest's module and is forwarded to it (module ``__getattr__``, PEP 562).

Of the allowed helpers (``HELPERS``), four are our own, and differ from pytest's on purpose:
the operand reprs are cut only *after* the process's secrets are redacted (pytest's
``saferepr`` keeps both ends of a long repr, and half a long token would escape redaction); the
custom message of ``assert x, msg`` is kept verbatim; and pytest's own comparison plugins
(``util._reprcompare``, set only inside a pytest run) are not consulted, so a check explains
itself the same way under ``mgn verify`` and ``pytest --mgn-verify``. The two of pytest's
assertion-pass hook are inert stubs; the last two are forwarded to pytest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import MethodType
from typing import Any

from .config.redact import safe_repr

__all__: list[str] = []  # nothing public: rewritten code reaches these by attribute

PYTEST_REWRITE = "_pytest.assertion.rewrite"
#: pytest's ``DEFAULT_REPR_MAX_SIZE``: the longest operand repr an explanation shows.
REPR_MAX = 240


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
    """The explanation of the first comparison of a chain that failed (``2 >= 3``)."""
    for index, result in enumerate(results):
        try:
            failed = not result
        except Exception:  # an object whose truth value raises: this is the culprit
            failed = True
        if failed:
            return expls[index]
    return expls[-1]


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

"""Every hook is documented with the same template, and its parameters are the documented ones."""

from __future__ import annotations

import inspect

import pytest

from mgn_verify import hookspecs

HOOKS = [name for name, obj in vars(hookspecs).items() if name.startswith("mgn_") and callable(obj)]


def test_the_documented_protocol_lists_every_hook() -> None:
    assert len(HOOKS) >= 9
    module_doc = hookspecs.__doc__ or ""
    for name in HOOKS:
        assert name in module_doc, f"{name} is missing from the run protocol in the module docstring"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_follows_the_template(name: str) -> None:
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert doc.splitlines()[0].endswith("."), "a one-line summary comes first"
    assert "**When**" in doc and "**Return**" in doc
    for param in inspect.signature(func).parameters:
        assert f":param {param}:" in doc, f"{name} does not document {param}"

"""docs/catalogue.md and docs/hooks.md are generated (scripts/gen_docs.py); a stale committed page fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import REPO


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_docs()


@pytest.mark.parametrize("name, render", [("catalogue.md", "render_catalogue"), ("hooks.md", "render_hooks")])
def test_committed_page_is_current(name: str, render: str) -> None:
    path = Path(REPO) / "docs" / name
    expected = getattr(GEN, render)()
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == expected, f"docs/{name} is stale: run python3 scripts/gen_docs.py"


def test_catalogue_is_deterministic_and_covers_every_layer() -> None:
    first, second = GEN.render_catalogue(), GEN.render_catalogue()
    assert first == second
    from mgn_verify import LAYERS

    headings = [line[3:] for line in first.splitlines() if line.startswith("## ")]
    assert headings[: len(LAYERS)] == list(LAYERS)
    # A parametrized check appears once, under its base id, with its instances summarised.
    assert first.count("| `system.ports.free`<br>") == 1
    auth = next(line for line in first.splitlines() if line.startswith("| `rethinkdb.auth`<br>"))
    assert auth.split(" | ")[2] == "`rethinkdb.reachable`"  # requires by base id, not per instance


def test_hooks_page_lists_every_hook_in_file_order() -> None:
    from mgn_verify import hookspecs

    source = (Path(REPO) / "mgn_verify" / "hookspecs.py").read_text(encoding="utf-8")
    names = [n for n in dir(hookspecs) if n.startswith("mgn_")]
    in_file = sorted(names, key=lambda n: source.index(f"def {n}("))
    page = GEN.render_hooks()
    assert [line[5:-1] for line in page.splitlines() if line.startswith("### `")] == in_file
    assert "def mgn_register_checks(registry: Registry, config: Config, selection: Sequence[str]) -> None" in page


def test_markdown_cells_escape_pipes_and_newlines() -> None:
    from mgn_verify.cli._markdown import cell

    assert cell("a | b\nc") == "a \\| b<br>c"

"""The kit's pytest fixtures: ``mgn_kit`` and ``mgn_hooks`` (documented in ``mgn_verify.testing``).

Loaded into every pytest run once mgn-verify is installed, so it imports only pytest and the
standard library; the kit itself is imported when a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mgn_verify.testing import HookRecorder, MgnKit

__all__ = ["mgn_hooks", "mgn_kit"]


@pytest.fixture
def mgn_kit(tmp_path: Path) -> MgnKit:
    """An ``MgnKit`` on a fresh directory: write check files and a config, run ``mgn`` on them
    (in-process, or ``process=True``) and get the exit code, output and JSON report back."""
    from mgn_verify.testing import MgnKit

    return MgnKit(tmp_path / "mgn-kit")


@pytest.fixture
def mgn_hooks() -> Iterator[HookRecorder]:
    """A ``HookRecorder`` of every hook call of the in-process ``mgn`` runs of this test."""
    from mgn_verify.testing import record_hooks

    with record_hooks() as recorder:
        yield recorder

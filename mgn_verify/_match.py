"""Matching check ids against what users write: ``--check``, ``--skip``, ``--ignore-preflight-errors``,
waivers and ``requires``. One rule everywhere: an exact id (or base id) wins, a glob second.

Ids carry brackets (``network.tcp.connect[10.0.0.5:6443]``) that a glob reads as a character
class; so a pattern that names a known id exactly matches that id (and, for a base id, its
instances) and nothing else. Only a pattern that names no check is read as a glob.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from ._model import CheckSpec
from ._text import did_you_mean

__all__ = ["IdMatcher"]


class IdMatcher:
    """Patterns against the ids of ``specs``; ``fold_case`` for waivers (kubeadm's ids ignore case)."""

    def __init__(self, specs: Iterable[CheckSpec], *, fold_case: bool = False) -> None:
        self._fold = fold_case
        self._specs = list(specs)
        self._names = {self._norm(name) for spec in self._specs for name in (spec.id, spec.base_id)}

    def _norm(self, text: str) -> str:
        return text.lower() if self._fold else text

    def is_exact(self, pattern: str) -> bool:
        """Whether ``pattern`` names a check (or a parametrized check's base id) exactly."""
        return self._norm(pattern) in self._names

    def matches(self, pattern: str, spec: CheckSpec) -> bool:
        wanted = self._norm(pattern)
        names = (self._norm(spec.id), self._norm(spec.base_id))
        if wanted in names:  # an exact id always matches itself, whatever else is known
            return True
        if wanted in self._names:  # it names another check exactly: not a glob
            return False
        return any(fnmatch.fnmatchcase(name, wanted) for name in names)

    def select(self, pattern: str) -> list[CheckSpec]:
        """Every spec ``pattern`` matches, in the order the specs were given."""
        return [spec for spec in self._specs if self.matches(pattern, spec)]

    def suggest(self, pattern: str) -> str:
        """`` (did you mean 'x'?)`` with the closest id, or ``""``."""
        ids = sorted({name for spec in self._specs for name in (spec.id, spec.base_id)})
        return did_you_mean(pattern, ids)

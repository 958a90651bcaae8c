"""Assertion rewriting for check files and opted-in plugin modules, by pytest's own rewriter.

A failing plain ``assert nodes >= 3`` then explains itself as in pytest (``assert 2 >= 3``, with
``+  where 2 = len([...])`` lines). Only what is loaded as a check file, and the modules a
plugin names with ``register_assert_rewrite``, are rewritten: ``mgn verify`` start-up stays cheap.

- ``CheckLoader`` (a ``SourceFileLoader`` whose code is rewritten) loads check files and, through
  the ``sys.meta_path`` finder ``register_assert_rewrite`` installs, registered modules.
- Rewritten code is cached as pytest caches it: ``__pycache__/<stem>.<tag>-mgn-<pytest
  version>.pyc``, valid while the source's mtime (ns) and size are unchanged. Where that cannot
  be written (``PYTHONDONTWRITEBYTECODE``, a read-only checks dir), in the user's cache
  (``$XDG_CACHE_HOME/mgn-verify/rewritten/<sha1 of the absolute path>.pyc``); else no cache. A
  cache hit imports nothing of pytest. Code is keyed and named by the absolute path, and always
  compiled with ``optimize=0``: ``python -O`` must not strip a check's asserts (nor cache that).
- pytest's module-level import ``_pytest.assertion.rewrite as @pytest_ar`` is redirected to
  ``mgn_verify._assert_support``, which imports pytest's helpers only when an assert fails.
- A module docstring containing ``PYTEST_DONT_REWRITE`` opts out, as in pytest. If pytest's
  private API is missing or changed, the file is compiled as it is (plain asserts, no crash).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.machinery
import importlib.util
import marshal
import os
import re
import struct
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

__all__ = ["AssertRewriteWarning", "CheckLoader", "code_for", "register_assert_rewrite"]

PYTEST_REWRITE = "_pytest.assertion.rewrite"
SUPPORT_MODULE = "mgn_verify._assert_support"
DONT_REWRITE = "PYTEST_DONT_REWRITE"
_ALIAS = "@pytest_ar"  # the name pytest's rewriter binds its helper module to
#: Python's bytecode magic, our format (``_format``), the source's mtime in ns and its size.
_HEADER = struct.Struct("<4s16sQQ")
#: A source younger than this is not cached: an edit of the same size within the filesystem's
#: mtime granularity would leave the cache looking fresh.
_SETTLE_NS = 2_000_000_000


class AssertRewriteWarning(UserWarning):
    """A module named to ``register_assert_rewrite`` was imported already: its asserts stay plain."""


class CheckLoader(importlib.machinery.SourceFileLoader):
    """Loads a source file with its asserts rewritten (``code_for``); everything else, resources
    included, is the ordinary source loader's."""

    def get_code(self, fullname: str) -> CodeType:
        return code_for(Path(self.get_filename(fullname)))


def code_for(path: Path) -> CodeType:
    """The code of ``path`` with its asserts rewritten, from the cache when it is fresh.
    Raises what reading (``OSError``) or compiling (``SyntaxError``) the source raises."""
    path = Path(os.path.abspath(path))  # `checks` and `/abs/checks` share the cache
    stat = path.stat()  # before reading: a file edited meanwhile is rewritten again next time
    for cached in _cache_files(path):
        code = _read_cache(cached, stat, str(path))
        if code is not None:
            return code
    code, cacheable = _compile(path.read_bytes(), str(path))
    if cacheable and time.time_ns() - stat.st_mtime_ns >= _SETTLE_NS:
        data = _HEADER.pack(importlib.util.MAGIC_NUMBER, _format(), stat.st_mtime_ns, stat.st_size) \
            + marshal.dumps(code)
        for cached in _cache_files(path, writing=True):
            if _write_cache(cached, data, (stat.st_mode & 0o666) | 0o600):
                break
    return code


@cache
def _rewriter_version() -> str:
    """pytest's version, read from ``_pytest/_version.py``: importing it would import ``_pytest``
    (which a cache hit must not), and its metadata costs some 3 ms."""
    try:
        spec = importlib.util.find_spec("_pytest")
        locations = spec.submodule_search_locations if spec is not None else None
        text = Path(next(iter(locations or ())), "_version.py").read_text(encoding="utf-8")
    except (ImportError, ValueError, StopIteration, OSError):
        return "none"
    match = re.search(r"""^(?:__version__ = )?version = ['"]([^'"]+)['"]""", text, re.MULTILINE)
    return match[1] if match else "unknown"


@cache
def _format() -> bytes:
    """What the cached code means: mgn-verify's version, the sources of the redirect and of the
    helpers it calls, and pytest's version; any change invalidates every cache."""
    import hashlib

    from ._version import __version__

    digest = hashlib.sha1(f"{__version__}\0{_rewriter_version()}".encode(), usedforsecurity=False)
    for module in ("_rewrite.py", "_assert_support.py"):
        with contextlib.suppress(OSError):
            digest.update(Path(__file__).with_name(module).read_bytes())
    return digest.digest()[:16]


def _cache_files(path: Path, *, writing: bool = False) -> Iterator[Path]:
    """Where the code of ``path`` is cached, in the order tried: next to it (as CPython and
    pytest cache, unless bytecode writing is off), then the user's cache. Lazy: a hit in the
    first costs nothing for the second."""
    tag = sys.implementation.cache_tag
    if not tag:  # None: this Python caches no bytecode
        return
    if not (writing and sys.dont_write_bytecode):
        # where pytest puts its own rewritten modules (sys.pycache_prefix honoured the same way)
        directory = Path(sys.pycache_prefix, *path.parts[1:-1]) if sys.pycache_prefix \
            else path.parent / "__pycache__"
        yield directory / f"{path.stem}.{tag}-mgn-{_rewriter_version()}.pyc"
    user = _user_cache()
    if user is not None:
        import hashlib

        yield user / f"{hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()}.pyc"


def _user_cache() -> Path | None:
    """``$XDG_CACHE_HOME/mgn-verify/rewritten`` (``~/.cache`` by default; a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG spec says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry
            return None
    return Path(base, "mgn-verify", "rewritten")


def _read_cache(cached: Path, stat: os.stat_result, filename: str) -> CodeType | None:
    try:
        data = cached.read_bytes()
    except OSError:
        return None
    if len(data) < _HEADER.size:
        return None
    magic, form, mtime_ns, size = _HEADER.unpack_from(data)
    if (magic, form, mtime_ns, size) != (importlib.util.MAGIC_NUMBER, _format(), stat.st_mtime_ns, stat.st_size):
        return None
    try:
        code = marshal.loads(data[_HEADER.size:])
    except (EOFError, ValueError, TypeError):
        return None
    # a directory moved with its __pycache__ would show the old path in tracebacks
    return code if isinstance(code, CodeType) and code.co_filename == filename else None


def _write_cache(cached: Path, data: bytes, mode: int) -> bool:
    """Written whole or not at all (a unique temporary file renamed): a concurrent run never
    reads half. False when it cannot be written (read-only, full disk)."""
    import tempfile

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=cached.parent, prefix=f".{cached.name}.", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(partial, mode)  # mkstemp's 0600 would hide a shared __pycache__ from other users
        os.replace(partial, cached)
    except BaseException as exc:  # Ctrl-C included: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(partial)
        if isinstance(exc, OSError):
            return False
        raise
    return True


def _compile(source: bytes, filename: str) -> tuple[CodeType, bool]:
    """The code and whether it may be cached (not when pytest's rewriter failed us)."""
    tree = ast.parse(source, filename=filename)
    if not _wants_rewrite(tree):
        return _plain(tree, filename), True
    rewritten = _rewrite(tree, source, filename)
    if rewritten is None:
        return _plain(ast.parse(source, filename=filename), filename), False
    return _plain(rewritten, filename), True


def _plain(tree: ast.Module, filename: str) -> CodeType:
    # optimize=0: under `python -O` a check keeps its asserts (and the cache stays valid for all);
    # dont_inherit: our __future__ imports stay ours
    return compile(tree, filename, "exec", dont_inherit=True, optimize=0)


def _wants_rewrite(tree: ast.Module) -> bool:
    docstring = ast.get_docstring(tree, clean=False)
    if docstring is not None and DONT_REWRITE in docstring:
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def _rewrite(tree: ast.Module, source: bytes, filename: str) -> ast.Module | None:
    """``tree`` rewritten by pytest, its helper import redirected; None if pytest's private
    API is not what we know (then the asserts stay plain: a pytest upgrade must not break a run)."""
    try:
        from _pytest.assertion import rewrite

        rewrite.rewrite_asserts(tree, source, filename)
    except Exception:  # ImportError, AttributeError, TypeError: the private API moved
        return None
    return tree if _redirect_helpers(tree) else None


def _redirect_helpers(tree: ast.Module) -> bool:
    """Point the ``@pytest_ar`` import at our lazy support module, once sure every helper the
    rewritten code calls is there."""
    imports = [alias for node in tree.body if isinstance(node, ast.Import)
               for alias in node.names if alias.asname == _ALIAS]
    if len(imports) != 1 or imports[0].name != PYTEST_REWRITE:
        return False
    from ._assert_support import HELPERS

    helpers = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Name) and node.value.id == _ALIAS}
    if not helpers <= HELPERS:  # a newer pytest calls something we do not know: plain asserts
        return False
    imports[0].name = SUPPORT_MODULE
    return True


# --- plugin modules that opt in ---------------------------------------------------------------

_registered: set[str] = set()


class _RewriteFinder:
    """A ``sys.meta_path`` finder: a module whose name is, or is under, a registered name is
    found as usual by the other finders, then loaded by ``CheckLoader`` if it is a source file."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not any(fullname == name or fullname.startswith(name + ".") for name in _registered):
            return None
        spec = self._others(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader or not spec.origin:
            return None  # a C extension, bytecode only, or pytest's own hook: left as it is
        spec.loader = CheckLoader(fullname, spec.origin)
        return spec

    def _others(self, fullname: str, path: Sequence[str] | None,
                target: ModuleType | None) -> importlib.machinery.ModuleSpec | None:
        for finder in list(sys.meta_path):
            find: Any = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None


_FINDER = _RewriteFinder()


def register_assert_rewrite(*names: str) -> None:
    """Rewrite the asserts of modules ``names`` (and of everything under them) when they are
    imported, as pytest's function of the same name does: a plugin package calls it in its
    ``__init__.py`` before importing its check modules, e.g. ``register_assert_rewrite(__name__ +
    ".checks")``. A module imported already stays as it is (``AssertRewriteWarning``)."""
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"register_assert_rewrite: expected module names (str), got {name!r}")
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in names:
        module = sys.modules.get(name)
        if module is not None and not isinstance(getattr(module, "__loader__", None), CheckLoader):
            warnings.warn(AssertRewriteWarning(f"module {name!r} was imported already: its asserts cannot be "
                                               "rewritten (call register_assert_rewrite before importing it)"),
                          stacklevel=2)
        _registered.add(name)

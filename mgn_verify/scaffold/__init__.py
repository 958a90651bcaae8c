"""``mgn plugin new NAME``: a complete plugin distribution, generated from ``templates/*.tmpl``.

The templates use ``string.Template`` placeholders (``${pkg}``), which never clash with the braces
of the Python, TOML and Markdown they hold. The distribution is written into a hidden directory
next to its destination and renamed into place at the end: a failure leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import keyword
import os
import re
import secrets
import shutil
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .._exceptions import UsageError

__all__ = ["BUILTIN_NAMES", "NAME_RULE", "RESERVED_NAMES", "Plugin", "check_name", "generate"]

NAME_RULE = "lowercase letters and digits, starting with a letter, in parts joined by single '-' or '_'"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_MAX_NAME = 64  # a distribution name, a package, a layer and a directory: keep it typeable

#: The plugins and layers mgn-verify itself ships (``core`` is the plugin manager's own).
BUILTIN_NAMES = frozenset({"core", "system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet",
                           "console", "json", "junit", "mgn_verify", "mgn-verify"})

_COMMAND = "'mgn verify {name}' is a command, so the layer could not be selected"
#: Names that cannot work as a layer or a package -> why (``mgn verify`` subcommands, current and planned).
RESERVED_NAMES = {
    "all": "'mgn verify all' selects every layer, so the layer could not be selected alone",
    **{command: _COMMAND.format(name=command) for command in
       ("run", "list", "explain", "graph", "history", "diff", "serve")},
    "test": "a top-level package 'test' would shadow or be shadowed by the standard library's",
    "tests": "the plugin would hold tests/tests and ship a top-level package 'tests' that clashes "
             "with every project's test directory",
    "checks": "a top-level package 'checks' clashes with checks directories (and its module would be "
              "checks.checks)",
    "conftest": "pytest imports every conftest.py as a module 'conftest': the package would clash with them",
}

#: Template -> path in the distribution (``${pkg}`` in a path is the package name), in output order.
_FILES = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
    ("package_init.py.tmpl", "${pkg}/__init__.py"),
    ("checks.py.tmpl", "${pkg}/checks.py"),
    ("test_checks.py.tmpl", "tests/test_checks.py"),
)


@dataclass(frozen=True, slots=True)
class Plugin:
    """What ``generate`` made: the distribution ``name``, its package (= its layer), where it is and
    its files (relative to ``root``, in a stable order)."""

    name: str
    package: str
    root: Path
    files: tuple[Path, ...]


def check_name(name: str) -> str:
    """The package name for the distribution ``name``; a ``UsageError`` saying why it cannot be one."""
    package = _check_form(name)
    _check_unused(name, package)
    return package


def _check_form(name: str) -> str:
    if len(name) > _MAX_NAME:  # first: an error line never echoes a huge argument
        raise UsageError(f"invalid plugin name {name[:20] + '…'!r}: longer than {_MAX_NAME} characters")
    if not _NAME.fullmatch(name):
        raise UsageError(f"invalid plugin name {name!r}: {_why_invalid(name)} (use {NAME_RULE}, e.g. acme-disk)")
    package = name.replace("-", "_")
    if name in BUILTIN_NAMES or package in BUILTIN_NAMES:
        raise UsageError(f"plugin name {name!r} is taken by mgn-verify itself (a built-in plugin or layer)")
    reason = RESERVED_NAMES.get(name) or RESERVED_NAMES.get(package)
    if reason is not None:
        raise UsageError(f"plugin name {name!r} is reserved: {reason}")
    if keyword.iskeyword(package):
        raise UsageError(f"plugin name {name!r} is a Python keyword: its package could not be imported")
    return package


def _check_unused(name: str, package: str) -> None:
    taken = _installed_plugin(name)
    if taken is not None:
        raise UsageError(f"plugin name {name!r} is already used by an installed plugin ({taken})")
    if _importable(package):
        raise UsageError(f"plugin name {name!r}: a module {package!r} is already importable "
                         f"(the new package would shadow it or be shadowed); choose another name")


def _why_invalid(name: str) -> str:
    if not name:
        return "it is empty"
    if not name.isascii():
        return f"it has non-ASCII characters ({next(c for c in name if not c.isascii())!r})"
    if name != name.lower():
        return "it has uppercase letters"
    if not name[0].isalpha():
        return "it does not start with a letter"
    if re.search(r"[-_]{2}|[-_]$", name):
        return "'-' and '_' must join two parts"
    return "it has characters other than a-z, 0-9, '-' and '_'"


def _installed_plugin(name: str) -> str | None:
    """``distribution version`` of an installed plugin already named ``name``, if any."""
    for entry in importlib.metadata.entry_points(group="mgn_verify"):
        if _normalised(entry.name) == _normalised(name):
            dist = entry.dist
            return f"{dist.name} {dist.version}" if dist is not None else entry.value
    return None


def _normalised(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): ``My_Checks`` and ``my-checks`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _same_package_dir(directory: Path, name: str) -> Path | None:
    """A directory in ``directory`` whose name is ``name`` up to '-', '_', '.' and case, if any."""
    wanted = _normalised(name)
    try:
        return next((entry for entry in directory.iterdir()
                     if entry.name != name and _normalised(entry.name) == wanted and entry.is_dir()), None)
    except PermissionError:  # a directory we may write to but not list: nothing to compare with
        return None


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken module of that name is still in the way
        return True


def generate(name: str, directory: Path) -> Plugin:
    """Write the distribution ``name`` into ``directory/name`` (which must not exist)."""
    package = _check_form(name)
    root = directory / name
    try:  # is_dir()/exists() raise PermissionError for a directory we may not search
        if not directory.is_dir():
            raise UsageError(f"--dir {str(directory)!r} is not an existing directory")
        if root.exists() or root.is_symlink():
            raise UsageError(f"{str(root)!r} already exists: mgn plugin new never overwrites (choose another "
                             f"name or --dir)")
        twin = _same_package_dir(directory, name)
        if twin is not None:
            raise UsageError(f"{str(twin)!r} already exists: {name!r} is the same package and distribution "
                             f"('-' and '_' are alike to Python and pip); choose another name or --dir")
    except OSError as exc:
        raise UsageError(f"cannot use --dir {str(directory)!r}: {exc.strerror or exc}") from None
    _check_unused(name, package)
    partial = directory / f".{name}.partial-{secrets.token_hex(4)}"
    values = {"name": name, "pkg": package, "pkg_upper": package.upper()}
    try:
        partial.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
    except OSError as exc:  # e.g. /proc, a read-only or full filesystem: the directory is the culprit
        raise UsageError(f"cannot create a directory in {str(directory)!r}: {exc.strerror or exc}") from None
    try:
        written = [_render(template, path, values, partial) for template, path in _FILES]
        if root.exists():  # created meanwhile: still never overwrite it
            raise UsageError(f"{str(root)!r} already exists: mgn plugin new never overwrites")
        os.rename(partial, root)
    except OSError as exc:
        raise UsageError(f"cannot create {str(root)!r}: {exc.strerror or exc}") from None
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return Plugin(name, package, root, tuple(written))


def _render(template: str, path: str, values: dict[str, str], into: Path) -> Path:
    relative = Path(string.Template(path).substitute(values))
    text = (resources.files(__name__) / "templates" / template).read_text(encoding="utf-8")
    target = into / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(string.Template(text).substitute(values), encoding="utf-8")
    return relative

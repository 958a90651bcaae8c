"""Building the plugin manager and loading plugins: built-in, entry points, ``-p``, check dirs.

Order: the essential ``core`` plugin; entry points in group ``mgn_verify`` (the built-in layers
and reporters are entry points of this very distribution, found like any third party's);
``-p MODULE``; then every ``check_*.py`` under each checks dir. ``-p no:NAME`` blocks a plugin
by name. With ``MGN_DISABLE_PLUGIN_AUTOLOAD=1`` only this distribution's own entry points load
automatically; others must be asked for with ``-p NAME``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pluggy

from . import hookspecs
from ._exceptions import MgnVerifyError, PluginError, UsageError
from ._registry import Registry
from ._rewrite import CheckLoader
from ._text import describe_exception, did_you_mean

__all__ = ["AUTOLOAD_ENV", "ENTRY_POINT_GROUP", "MANAGER_LISTENERS", "TRACE_ENV", "PluginInfo", "Plugins",
           "SignalWatch", "load_plugins", "tracing_requested"]

ENTRY_POINT_GROUP = "mgn_verify"
AUTOLOAD_ENV = "MGN_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "MGN_TRACE_HOOKS"
#: Longest trace line written (after redaction): a config or registry repr can be huge.
TRACE_LINE_MAX = 400
OWN_DISTRIBUTION = "mgn-verify"
ESSENTIAL = {"core": "mgn_verify.builtin"}
#: Called with every plugin manager this process creates, before any plugin is registered: the
#: test kit's hook recorder (``mgn_verify.testing.record_hooks``) watches in-process runs here.
MANAGER_LISTENERS: list[Callable[[pluggy.PluginManager], None]] = []


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    module: str
    distribution: str = ""
    version: str = ""
    #: Where it came from: ``builtin``, ``entry point``, ``-p`` or ``checks-dir``.
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version}


class _Manager(pluggy.PluginManager):
    """Like pytest's: a module-level function named ``mgn_*`` is a hook even undecorated,
    so a typo in a hook name is caught by ``check_pending`` instead of silently ignored."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("mgn_") and callable(getattr(plugin, name, None)) \
                and isinstance(plugin, ModuleType):
            return {"wrapper": False, "hookwrapper": False, "optionalhook": False, "tryfirst": False,
                    "trylast": False, "specname": None}
        return opts


class SignalWatch:
    """Tells a real Ctrl-C or SIGTERM apart from a ``KeyboardInterrupt`` or ``SystemExit`` that
    plugin code raised itself: while active, Python-level SIGINT/SIGTERM handlers are chained
    through one that notes the signal. Only on the main thread (elsewhere signals never land)."""

    def __init__(self) -> None:
        self.arrived = False
        self._previous: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def __enter__(self) -> SignalWatch:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(sig)
                if callable(previous):  # SIG_DFL/SIG_IGN run no Python code: nothing to tell apart
                    self._previous[sig] = previous
                    signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.arrived = True
        self._previous[signum](signum, frame)

    def __exit__(self, *exc_info: object) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._note:
                signal.signal(sig, previous)
        self._previous.clear()

    def from_plugin(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the plugin's own failure (not our error, not an interruption)."""
        return not self.arrived and not isinstance(exc, MgnVerifyError)


@dataclass
class Plugins:
    pm: pluggy.PluginManager
    registry: Registry
    loaded: list[PluginInfo] = field(default_factory=list)
    #: Every plugin name that could load (entry points, check files), blocked or not.
    known: set[str] = field(default_factory=set)


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether ``MGN_TRACE_HOOKS`` asks for hook tracing (anything but empty/0/false/no)."""
    return env.get(TRACE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def load_plugins(requested: Iterable[str] = (), checks_dirs: Iterable[str] = (),
                 env: Mapping[str, str] | None = None, warn: Callable[[str], None] | None = None,
                 redact: Callable[[str], str] | None = None, origins: Mapping[str, str] | None = None) -> Plugins:
    """Load every plugin. Any exception raised by a plugin's import (``SystemExit`` and
    ``KeyboardInterrupt`` included, unless a real signal arrived) is a one-line ``PluginError``.
    With ``MGN_TRACE_HOOKS=1`` every hook call is traced to stderr, its text passed through
    ``redact`` (the session's redactor) before each line is cut to a bounded length.
    ``origins`` says where a checks dir was configured, for its not-found error."""
    with SignalWatch() as watch:
        plugins = _load_all(list(requested), checks_dirs, env if env is not None else {}, watch, redact,
                            origins or {})
    if warn is not None:
        _warn_unknown_blocked(plugins, list(requested), warn)
    return plugins


def _load_all(requested: list[str], checks_dirs: Iterable[str], env: Mapping[str, str],
              watch: SignalWatch, redact: Callable[[str], str] | None = None,
              origins: Mapping[str, str] | None = None) -> Plugins:
    pm = _Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if tracing_requested(env):
        _enable_tracing(pm, redact or (lambda text: text))
    for listener in list(MANAGER_LISTENERS):
        listener(pm)
    plugins = Plugins(pm, Registry())
    wanted: list[str] = []
    for arg in requested:
        if arg.startswith("no:"):
            name = arg[3:]
            if name in ESSENTIAL:
                raise UsageError(f"-p no:{name}: plugin {name!r} is essential and cannot be blocked")
            pm.set_blocked(name)
        else:
            wanted.append(arg)
    for name, module in ESSENTIAL.items():
        _register(plugins, name, importlib.import_module(module), source="builtin")
        plugins.known.add(name)
    autoload = env.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for ep in sorted(eps.values(), key=lambda e: e.name):
        dist = _distribution(ep)
        if (autoload or dist[0] == OWN_DISTRIBUTION or ep.name in wanted) and not pm.is_blocked(ep.name):
            _register(plugins, ep.name, _load_entry_point(ep, watch), dist, source="entry point")
        plugins.known.add(ep.name)
    for name in wanted:
        if name not in eps and not pm.is_blocked(name):
            _register(plugins, name, _import_module(name, watch), source="-p")
    for directory in checks_dirs:
        load_checks_dir(plugins, directory, watch, (origins or {}).get(directory, ""))
    _check_pending(pm)
    return plugins


def _warn_unknown_blocked(plugins: Plugins, requested: list[str], warn: Callable[[str], None]) -> None:
    """``-p no:NAME`` with a NAME no plugin has blocks nothing: most likely a typo."""
    known = plugins.known | {arg for arg in requested if not arg.startswith("no:")}
    for arg in requested:
        name = arg[3:]
        if arg.startswith("no:") and name not in known:
            warn(f"-p no:{name}: no plugin is named {name!r}{did_you_mean(name, plugins.known)}")


def _load_entry_point(ep: EntryPoint, watch: SignalWatch) -> ModuleType:
    try:
        loaded = ep.load()
    except BaseException as exc:
        if not watch.from_plugin(exc):
            raise
        raise PluginError(f"entry point {ep.value!r} failed to import: {describe_exception(exc)}",
                          plugin=ep.name) from None
    if not isinstance(loaded, ModuleType):
        raise PluginError(f"entry point {ep.value!r} must name a module", plugin=ep.name)
    return loaded


def _import_module(name: str, watch: SignalWatch) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
            raise PluginError("no such module or entry point (given with -p)", plugin=name) from None
        raise PluginError(f"failed to import: {describe_exception(exc)}", plugin=name) from None
    except BaseException as exc:
        if not watch.from_plugin(exc):
            raise
        raise PluginError(f"failed to import: {describe_exception(exc)}", plugin=name) from None


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    """(name, version) of the entry point's distribution; its METADATA is parsed once, not per field."""
    if ep.dist is None:
        return ("", "")
    metadata = ep.dist.metadata
    return (metadata["Name"] or "", metadata["Version"] or "")


def _register(plugins: Plugins, name: str, module: ModuleType, dist: tuple[str, str] = ("", ""),
              *, undecorated: bool = False, source: str = "") -> None:
    try:
        plugins.pm.register(module, name=name)
    except ValueError as exc:  # pluggy: the name or the module is registered already
        raise PluginError(str(exc), plugin=name) from None
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid hook: {exc}", plugin=name) from None
    plugins.registry.current_plugin = name
    try:
        plugins.registry.add_module(module, name, undecorated=undecorated)
    except (ValueError, TypeError) as exc:
        raise PluginError(str(exc), plugin=name) from None
    plugins.loaded.append(PluginInfo(name, module.__name__, *dist, source=source))


def load_checks_dir(plugins: Plugins, directory: str, watch: SignalWatch | None = None, origin: str = "") -> None:
    """Import every ``check_*.py`` below ``directory`` (sorted) as a plugin whose ``check_*``
    functions are checks even without ``@check``; ``-p no:PATH`` blocks one file. ``origin``
    (``verify.checks_dirs in mgn.yaml``) is named when the directory does not exist.

    The directory is a package (``mgn_checks_<hash>``, each subdirectory one below it), so a
    check file imports a helper next to it with ``from .helpers import x``; the directory is not
    put on ``sys.path``, where its modules would shadow installed ones of the same name."""
    watch = watch or SignalWatch()
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UsageError(f"checks dir not found: {directory}" + (f" ({origin})" if origin else ""))
    package = f"mgn_checks_{abs(hash(str(root.resolve()))):x}"
    _forget_modules(package)  # a helper edited since an earlier load in this process is read afresh
    for path in sorted(root.rglob("check_*.py")):
        plugins.known.add(str(path))
        if plugins.pm.is_blocked(str(path)):
            continue
        relative = path.relative_to(root).with_suffix("")
        module_name = ".".join((package, *relative.parts))
        _add_packages(package, root, relative.parts[:-1])
        # asserts rewritten by pytest's rewriter (cached), so a failing one shows its operands
        spec = importlib.util.spec_from_file_location(module_name, path, loader=CheckLoader(module_name, str(path)))
        if spec is None or spec.loader is None:
            raise PluginError("cannot be imported", plugin=str(path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[module_name]
            if not watch.from_plugin(exc):
                raise
            raise PluginError(f"failed to import: {describe_exception(exc)}", plugin=str(path)) from None
        _register(plugins, str(path), module, undecorated=True, source="checks-dir")


def _add_packages(package: str, root: Path, parts: tuple[str, ...]) -> None:
    """Empty package modules for ``root`` and each directory down to a check file, so relative
    imports resolve (no ``__init__.py`` is run: the directory need not have one)."""
    for depth in range(len(parts) + 1):
        name = ".".join((package, *parts[:depth]))
        if name not in sys.modules:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(root.joinpath(*parts[:depth]))]
            sys.modules[name] = importlib.util.module_from_spec(spec)


def _forget_modules(package: str) -> None:
    for name in [name for name in sys.modules if name == package or name.startswith(package + ".")]:
        del sys.modules[name]


def _enable_tracing(pm: pluggy.PluginManager, redact: Callable[[str], str]) -> None:
    """pluggy's own tracing (``pm.enable_tracing``) to stderr, each call also naming the plugins
    that implement the hook (pluggy's lines give only the hook and its arguments)."""
    def write(message: str) -> None:
        lines = redact(message).splitlines()  # redact first: a cut must not split a secret
        sys.stderr.write("".join(f"mgn-trace: {_cut(line)}\n" for line in lines))

    pm.trace.root.setwriter(write)
    hooktrace = pm.trace.root.get("hook")

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "-"
        hooktrace.root.indent += 1
        hooktrace("plugins", hook_name, "<-", names)
        hooktrace.root.indent -= 1

    pm.add_hookcall_monitoring(before, lambda *_: None)
    pm.enable_tracing()  # registered after ours: its "before" (arguments) runs first


def _cut(line: str) -> str:
    return line if len(line) <= TRACE_LINE_MAX else line[:TRACE_LINE_MAX - 1] + "…"


def _check_pending(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending``, with our words: the plugin's name, the hook, the closest
    hookspec (pluggy names the module object and says "unknown hook" twice)."""
    hooks = {name: caller for name, caller in vars(pm.hook).items() if isinstance(caller, pluggy.HookCaller)}
    specified = [name for name, caller in hooks.items() if caller.has_spec()]
    for name, caller in sorted(hooks.items()):
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                raise PluginError(f"unknown hook {name!r}{did_you_mean(name, specified)}", plugin=impl.plugin_name)

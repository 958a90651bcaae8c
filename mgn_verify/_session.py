"""Loading a session: plugins, configuration, checks — step by step, each failure one line.

``Session.load()`` returns a ``LoadedSession`` (``_loaded``), whose parts are all there: it
selects and runs. What loading had learned before it failed (the config, the warnings, the
reporters) stays on the ``Session``, so a run that could not start still writes its reports.
The loading steps raise ``MgnVerifyError`` subclasses with one-line messages naming the culprit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._exceptions import MgnVerifyError, PluginError
from ._graph import build_graph
from ._loaded import LoadedSession, Selection
from ._plugins import Plugins, SignalWatch, load_plugins
from ._reporting import ReporterRegistry
from ._text import describe_exception
from .config import Config, ConfigSources, Redactor, SettingsRegistry, load_sources, resolve
from .config.loader import configured_checks_dirs
from .config.redact import SECRET_NAME, url_passwords

if TYPE_CHECKING:
    from pluggy import HookImpl

__all__ = ["LoadedSession", "Selection", "Session"]

#: Fixtures every check can ask for: the resolved ``config`` and the run's ``plan``.
BUILTIN_FIXTURES = {"config", "plan"}


class Session:
    def __init__(self, env: Mapping[str, str], warn: Callable[[str], None]) -> None:
        self.env = env
        self.warnings: list[str] = []
        self._warn = warn
        #: Set as soon as it is resolved (a later loading step may still fail).
        self.config: Config | None = None
        self.reporters = ReporterRegistry()
        self._early_redactor = Redactor()

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self._warn(message)

    @property
    def redactor(self) -> Redactor:
        """The config's redactor once resolved; before that, one that knows the secret-looking
        values of the raw sources, so an early error (a plugin's import) cannot quote them."""
        return self.config.redactor if self.config is not None else self._early_redactor

    def load(self, *, plugins: list[str], checks_dirs: list[str], config_path: str | None,
             settings: dict[str, tuple[Any, bool]], selection: Sequence[str] = ()) -> LoadedSession:
        try:
            # Stdout belongs to the command's output (-o json, list --json): what plugins print
            # while they load goes to stderr.
            with _stdout_to_stderr():
                return self._load(plugins, checks_dirs, config_path, settings, selection)
        except MgnVerifyError as exc:
            exc.args = (self.redactor.text(str(exc)),)  # a plugin's error text may quote a secret
            raise

    def _load(self, plugins: list[str], checks_dirs: list[str], config_path: str | None,
              settings: dict[str, tuple[Any, bool]], selection: Sequence[str]) -> LoadedSession:
        sources = load_sources(config_path, self.env, settings)
        self._early_redactor = _early_secrets(sources, Redactor())
        configured = configured_checks_dirs(sources)
        dirs = _distinct_dirs([*(directory for directory, _ in configured), *checks_dirs])
        # The redactor is looked up per trace line: it learns the plugins' secret settings later.
        loaded = load_plugins(plugins, dirs, self.env, warn=self.warn,
                              redact=lambda text: self.redactor.text(text), origins=dict(configured))
        registry = SettingsRegistry()
        self._call_each(loaded, "mgn_add_settings", settings=registry)
        self.config = config = resolve(sources, registry, warn=self.warn)
        _early_secrets(sources, config.redactor)  # also those of a source a later one overrode
        self._call_each(loaded, "mgn_configure", config=config)
        self._call_each(loaded, "mgn_register_fixtures", registry=loaded.registry)
        self._call_each(loaded, "mgn_register_checks", registry=loaded.registry, config=config,
                        selection=list(selection))
        self._call_each(loaded, "mgn_register_reporters", reporters=self.reporters)
        loaded.registry.validate_fixtures(BUILTIN_FIXTURES)
        graph = build_graph(loaded.registry.checks)
        return LoadedSession(plugins=loaded, config=config, graph=graph, reporters=self.reporters,
                             warnings=self.warnings, warn=self.warn)

    def _call_each(self, plugins: Plugins, hook: str, **kwargs: Any) -> None:
        """Call a setup hook through pluggy one implementing plugin at a time (wrappers included:
        a wrapper wraps each plugin's call), so registries know which plugin added what and an
        exception names the plugin whose code raised it, its text redacted."""
        pm = plugins.pm
        impls = getattr(pm.hook, hook).get_hookimpls()
        plain = [impl for impl in reversed(impls) if not (impl.wrapper or impl.hookwrapper)]
        for impl in plain or [None]:  # None: wrappers only, still called once
            name = impl.plugin_name if impl is not None else ""
            for value in kwargs.values():  # registries record which plugin added what
                if hasattr(value, "current_plugin"):
                    value.current_plugin = name
            others = [other.plugin for other in plain if other is not impl]
            with SignalWatch() as watch:
                try:
                    pm.subset_hook_caller(hook, others)(**kwargs)
                except BaseException as exc:
                    if not watch.from_plugin(exc):
                        raise
                    culprit = _raising_plugin(exc, impls) or name
                    message = self.redactor.text(describe_exception(exc))
                    raise PluginError(f"{hook} raised {message}", plugin=culprit) from None




def _distinct_dirs(dirs: list[str]) -> list[str]:
    """Each checks directory once, however it is spelt (config and flag, ``d`` and ``./d/``)."""
    seen: set[str] = set()
    distinct = []
    for directory in dirs:
        key = os.path.realpath(os.path.expanduser(directory))
        if key not in seen:
            seen.add(key)
            distinct.append(directory)
    return distinct


def _raising_plugin(exc: BaseException, impls: Sequence[HookImpl]) -> str | None:
    """The plugin whose hook function is the innermost one in ``exc``'s traceback."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in impls}
    culprit = None
    tb = exc.__traceback__
    while tb is not None:
        culprit = codes.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit


def _early_secrets(sources: ConfigSources, redactor: Redactor) -> Redactor:
    """Add to ``redactor`` the values of secret-looking keys and the URL passwords of every
    source (file, ``MGN_*`` variables, ``--set``): known before any plugin has declared its
    secret settings, and kept when a later source overrides the value."""
    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key))
        elif isinstance(node, list):
            for item in node:
                walk(item, name)
        elif SECRET_NAME.search(name):
            redactor.add(node)
        elif isinstance(node, str):
            for password in url_passwords(node):
                redactor.add(password)

    walk(sources.file_data, "")
    for name, value in sources.env.items():
        if name.startswith("MGN_"):
            walk(value, name)
    for key, (value, _) in sources.cli.items():
        walk(value, key.rsplit(".", 1)[-1])
    return redactor


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """``sys.stdout`` and, when it is a real descriptor, fd 1 point at stderr for the block."""
    saved = -1
    try:
        fd, err = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not real descriptors (a test runner's capture)
        fd = err = -1
    if fd >= 0:
        sys.stdout.flush()
        saved = os.dup(fd)
        os.dup2(err, fd)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved >= 0:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)

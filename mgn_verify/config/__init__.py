"""Configuration: settings declared by plugins, resolved from layered sources.

Order, last wins: built-in defaults < config file < ``MGN_*`` environment < command line.
"""

from .loader import ConfigSources, load_sources, resolve
from .redact import Redactor
from .settings import Config, Setting, SettingsRegistry

__all__ = ["Config", "ConfigSources", "Redactor", "Setting", "SettingsRegistry", "load_sources", "resolve"]

"""The single source of the package version (read by setuptools and ``mgn --version``)."""

__version__ = "0.1.0"

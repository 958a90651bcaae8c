"""Reporters turn a finished ``RunReport`` into text; each format is a plugin.

A reporter never runs checks. It is created by the factory its plugin registered through
``mgn_register_reporters``; if it also implements hooks (``mgn_check_start``, ``mgn_result``),
the session registers it for the run so it can show live progress.

The seam itself (``Reporter``, ``ReporterContext``, ``ReporterRegistry``) lives in the core
(``mgn_verify._reporting``, public as ``mgn_verify.ReporterRegistry``); it is re-exported here
for plugins written against the old import path.
"""

from __future__ import annotations

from .._reporting import Reporter, ReporterContext, ReporterFactory, ReporterRegistry

__all__ = ["Reporter", "ReporterContext", "ReporterFactory", "ReporterRegistry"]

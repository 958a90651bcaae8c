"""pytest fixtures that run the GuildNet lab, for mgn-verify's own tests and for plugin authors.

The plugin is loaded by the ``pytest11`` entry point ``mgn_verify`` (``mgn_verify.kit``), so installing
mgn-verify makes the fixtures available everywhere (without the install:
``pytest -p mgn_verify.kit.pytest_plugin``). Importing it starts nothing.

Fixtures
--------
``mgn_lab`` (function scope)
    A fresh, running ``mgn_verify.lab.Lab`` for one test, with no faults except those named by
    the ``mgn_lab_faults`` marker. Stopped (ports, sockets, threads, temp dir) after the test::

        def test_reports_rethinkdb_down(mgn_lab):
            mgn_lab.inject("rethinkdb.down")
            result = run("mgn", "verify", "rethinkdb", "--config", str(mgn_lab.config_path))
            assert result.exit_code != 0

``mgn_lab_session`` (session scope)
    One lab shared by every test of the session: cheaper, but the Host App request log and any
    state the simulators keep are shared. Faults are reset around each test that uses it: the
    test starts with exactly its ``mgn_lab_faults`` and everything is cleared afterwards.

Markers
-------
``@pytest.mark.mgn_lab_faults("tailscale.needs_login", "rethinkdb.down")``
    Faults active from the start of the test, for either fixture. Unknown names fail the test
    with a suggestion (``did you mean 'rethinkdb.down'?``). Registered in ``pytest_configure``,
    so ``--strict-markers`` accepts it.
``@pytest.mark.mgn_lab_clusters("lab", "lab-2")``
    ``mgn_lab`` only: a lab with these clusters (each extra one with its own simulators and
    faults: ``mgn_lab.inject("kubernetes.down", cluster="lab-2")``). ``mgn_lab_session`` stays
    single-cluster; build ``Lab(clusters=...)`` directly for a shared multi-cluster lab.
``@pytest.mark.mgn_lab_bare``
    ``mgn_lab`` only: a bare lab (``Lab(bare=True)``: no GuildNet installed, no cluster
    registered with the Host App), what ``mgn install`` starts from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mgn_verify.lab import Lab

__all__ = ["BARE_MARKER", "CLUSTERS_MARKER", "MARKER", "mgn_lab", "mgn_lab_session"]

MARKER = "mgn_lab_faults"
CLUSTERS_MARKER = "mgn_lab_clusters"
BARE_MARKER = "mgn_lab_bare"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): start the mgn_lab / mgn_lab_session lab with these faults injected",
    )
    config.addinivalue_line(
        "markers",
        f"{CLUSTERS_MARKER}(*ids): start the mgn_lab lab with these clusters (the first one first)",
    )
    config.addinivalue_line(
        "markers", f"{BARE_MARKER}: start the mgn_lab lab bare (GuildNet not installed, no cluster registered)"
    )


def _marker_faults(node: pytest.Item | pytest.Collector) -> list[str]:
    names: list[str] = []
    # Closest marker first; class- and module-level markers add to the function's.
    for mark in node.iter_markers(MARKER):
        for arg in mark.args:
            if isinstance(arg, str):
                names.append(arg)
            else:
                names.extend(str(name) for name in arg)
    return names


@pytest.fixture
def mgn_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A running lab for this test only (see the module docstring)."""
    # Imported lazily: the plugin is loaded into every pytest run once mgn-verify is installed.
    from mgn_verify.lab import Lab

    marker = request.node.get_closest_marker(CLUSTERS_MARKER)
    clusters = [str(c) for c in marker.args] if marker is not None and marker.args else None
    bare = request.node.get_closest_marker(BARE_MARKER) is not None
    with Lab(faults=_marker_faults(request.node), clusters=clusters, bare=bare) as lab:
        yield lab


@pytest.fixture(scope="session")
def mgn_lab_session() -> Iterator[Lab]:
    """One running lab shared by the whole session (see the module docstring)."""
    from mgn_verify.lab import Lab

    with Lab() as lab:
        yield lab


@pytest.fixture(autouse=True)
def _mgn_lab_session_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    # Only tests that use the shared lab pay for this; for the rest it is a name lookup.
    if "mgn_lab_session" not in request.fixturenames:
        yield
        return
    lab: Lab = request.getfixturevalue("mgn_lab_session")
    lab.clear_all()
    for name in _marker_faults(request.node):
        lab.inject(name)
    try:
        yield
    finally:
        lab.clear_all()

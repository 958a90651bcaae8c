"""Building the graph: cycles, unknown dependencies, duplicates, globs, deterministic order."""

from __future__ import annotations

import pytest

from mgn_verify import DependencyCycleError, DuplicateCheckError, UnknownDependencyError, check, parametrize
from mgn_verify._collect import specs_from_function
from mgn_verify._graph import build_graph
from mgn_verify._model import CheckSpec
from mgn_verify._registry import Registry
from tests.helpers import ISOLATED


def _specs(*funcs: object) -> dict[str, CheckSpec]:
    out: dict[str, CheckSpec] = {}
    for func in funcs:
        for spec in specs_from_function(func, "test"):  # type: ignore[arg-type]
            out[spec.id] = spec
    return out


def _check(cid: str, requires: list[str] | None = None) -> object:
    def func() -> None: ...
    func.__name__ = "check_" + cid.replace(".", "_")
    return check(id=cid, requires=requires)(func)


def test_cycle_is_reported_as_a_path() -> None:
    specs = _specs(_check("a.one", ["a.two"]), _check("a.two", ["a.three"]), _check("a.three", ["a.one"]),
                   _check("a.free"))
    with pytest.raises(DependencyCycleError) as info:
        build_graph(specs)
    assert str(info.value) == "dependency cycle: a.one -> a.two -> a.three -> a.one"


def test_unknown_dependency_names_check_and_suggests() -> None:
    with pytest.raises(UnknownDependencyError, match=r"check 'a\.b' requires 'system\.disk\.fre', "
                       r"which matches no check \(did you mean 'system\.disk\.free'\?\)"):
        build_graph(_specs(_check("a.b", ["system.disk.fre"]), _check("system.disk.free")))


def test_glob_that_matches_nothing_is_unknown() -> None:
    with pytest.raises(UnknownDependencyError, match=r"'kubernetes\.\*'"):
        build_graph(_specs(_check("a.b", ["kubernetes.*"])))


def test_duplicate_id_names_both_places() -> None:
    registry = Registry()
    registry.current_plugin = "first"
    registry.add_check(_check("a.dup"))  # type: ignore[arg-type]
    registry.current_plugin = "second"
    with pytest.raises(DuplicateCheckError, match=r"duplicate check id 'a\.dup': defined in plugin 'first'"):
        registry.add_check(_check("a.dup"))  # type: ignore[arg-type]


def test_globs_and_parametrized_base_ids_resolve() -> None:
    @check(id="system.ports.free")
    @parametrize("port", [1, 2])
    def check_ports(port: int) -> None: ...

    graph = build_graph(_specs(check_ports, _check("net.a"), _check("net.b"),
                               _check("x.base", ["system.ports.free"]), _check("x.glob", ["net.*"])))
    assert graph.requires["x.base"] == ("system.ports.free[1]", "system.ports.free[2]")
    assert graph.requires["x.glob"] == ("net.a", "net.b")


def test_order_is_dependency_then_layer_then_id() -> None:
    specs = _specs(_check("network.z"), _check("system.b", ["network.z"]), _check("system.a"),
                   _check("acme.x"), _check("guildnet.q"))
    order = build_graph(specs).order
    assert order == ("system.a", "network.z", "system.b", "guildnet.q", "acme.x")


def test_cycle_through_cli_is_one_line_exit_2(mgn, checks_dir) -> None:
    directory = checks_dir(check_c='''
from mgn_verify import check
@check(id="c.a", requires=["c.b"])
def check_a(): pass
@check(id="c.b", requires=["c.a"])
def check_b(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr.strip() == "mgn: error: dependency cycle: c.a -> c.b -> c.a"
    assert run.report is not None and run.report["summary"]["errors"] == ["dependency cycle: c.a -> c.b -> c.a"]


def test_duplicate_id_through_cli_is_one_line_exit_2(mgn, checks_dir) -> None:
    directory = checks_dir(check_one='''
from mgn_verify import check
@check(id="d.same")
def check_a(): pass
''', check_two='''
from mgn_verify import check
@check(id="d.same")
def check_b(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: duplicate check id 'd.same': defined in plugin ")
    assert "check_one.py" in run.stderr and "check_two.py" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_exact_parametrized_id_is_not_a_glob() -> None:
    @check(id="net.tcp")
    @parametrize("endpoint", ["127.0.0.1:443", "127.0.0.1:80"])
    def check_tcp(endpoint: str) -> None: ...

    graph = build_graph(_specs(check_tcp, _check("net.tls", ["net.tcp[127.0.0.1:443]"])))
    assert graph.requires["net.tls"] == ("net.tcp[127.0.0.1:443]",)


def test_requires_naming_a_parameter_resolves_per_instance() -> None:
    reach = parametrize("cluster", ["a", "b[1]"])(check(id="k.reach")(lambda cluster: None))

    @check(id="k.nodes", requires="k.reach[{cluster}]")
    @parametrize("cluster", ["a", "b[1]"])
    def nodes(cluster: str) -> None: ...

    graph = build_graph(_specs(reach, nodes))
    # Each instance waits for its own cluster only; brackets in a value are matched literally.
    assert graph.requires["k.nodes[a]"] == ("k.reach[a]",)
    assert graph.requires["k.nodes[b[1]]"] == ("k.reach[b[1]]",)


def test_requires_naming_an_unknown_parameter_is_an_error() -> None:
    @check(id="k.nodes", requires="k.reach[{clustr}]")
    @parametrize("cluster", ["a"])
    def nodes(cluster: str) -> None: ...

    with pytest.raises(ValueError, match=r"check 'k.nodes': requires 'k.reach\[\{clustr\}\]' names 'clustr', "
                       "which is not a parametrize name"):
        _specs(nodes)

"""Marks are data on the function; collection gives them meaning."""

import pytest

from mgn_verify import check, fixture, parametrize
from mgn_verify._collect import specs_from_function
from mgn_verify._marks import get_marks


def test_check_returns_the_function_itself() -> None:
    def check_x() -> str:
        return "ok"

    assert check(id="a.b")(check_x) is check_x
    assert check_x() == "ok"


def test_bare_check_derives_id_title_and_layer() -> None:
    @check
    def check_tmp_writable() -> None:
        """Temp dir is writable.

        Longer explanation."""

    (spec,) = specs_from_function(check_tmp_writable, "p")
    assert spec.id == "test_marks.tmp_writable"
    assert spec.layer == "test_marks"
    assert spec.title == "Temp dir is writable."
    assert "Longer explanation." in spec.description


@pytest.mark.parametrize("order", ["above", "below"])
def test_parametrize_works_above_or_below_check(order: str) -> None:
    def check_port(port: int, config: object) -> None: ...

    if order == "above":
        func = parametrize("port", [6443, 10250])(check(id="system.ports.free")(check_port))
    else:
        func = check(id="system.ports.free")(parametrize("port", [6443, 10250])(check_port))
    specs = specs_from_function(func, "p")
    assert [s.id for s in specs] == ["system.ports.free[6443]", "system.ports.free[10250]"]
    assert [s.target for s in specs] == ["6443", "10250"]
    assert all(s.base_id == "system.ports.free" and s.argnames == ("config",) for s in specs)
    assert specs[1].params == {"port": 10250}


def test_stacked_parametrize_multiplies_and_tuples_unpack() -> None:
    @check(id="n.pair")
    @parametrize("host,port", [("a", 1), ("b", 2)])
    @parametrize("proto", ["tcp", "udp"], ids=["T", "U"])
    def check_pair(host: str, port: int, proto: str) -> None: ...

    ids = [s.id for s in specs_from_function(check_pair, "p")]
    assert ids == ["n.pair[T-a-1]", "n.pair[T-b-2]", "n.pair[U-a-1]", "n.pair[U-b-2]"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"severity": "fatal"}, "severity must be one of critical, warning, info"),
    ({"timeout": 0}, "timeout must be positive"),
    ({"retries": -1}, "must not be negative"),
])
def test_check_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(id="a.b", **kwargs)  # type: ignore[arg-type]


def test_parametrize_rejects_unknown_argument_name() -> None:
    @check(id="a.b")
    @parametrize("nope", [1])
    def check_x(port: int) -> None: ...

    with pytest.raises(ValueError, match="parametrize names 'nope'"):
        specs_from_function(check_x, "p")


def test_fixture_mark_records_name() -> None:
    @fixture(name="kube")
    def make_client() -> str:
        return "client"

    assert get_marks(make_client, "fixture")[0].kwargs == {"name": "kube"}

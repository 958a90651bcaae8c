"""Which clusters a run verifies (config, defaults, discovery, --cluster) and per-cluster checks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mgn_verify.checks._clusters import (
    cluster_targets,
    explicitly_selected,
    kubeconfig_candidates,
    not_found,
    per_cluster,
    wants_discovery,
)

from mgn_verify import ConfigError, UsageError, check
from mgn_verify._collect import specs_from_function
from mgn_verify._marks import get_marks
from mgn_verify.testing import make_config
from tests.checks._layer_helpers import run_check


def test_without_a_clusters_list_the_default_cluster_uses_the_top_level_settings() -> None:
    config = make_config({"defaults.cluster": "prod", "kubernetes.kubeconfig": "/k/config",
                          "rethinkdb.port": 29015, "rethinkdb.password": "s3cret-pw"})
    [target] = cluster_targets(config)
    assert (target.id, target.kubeconfig, target.origin) == ("prod", "/k/config", "defaults")
    assert (target.rethinkdb.port, target.rethinkdb.service, target.rethinkdb.namespace) == (29015, "rethinkdb",
                                                                                              "default")
    assert "s3cret-pw" not in repr(target)  # a password is never in a repr (logs, tracebacks)
    assert cluster_targets(make_config())[0].id == "default"


def test_clusters_list_entries_discovery_and_narrowing() -> None:
    config = make_config({"clusters": ["east", {"id": "west", "kubeconfig": "/w", "context": "w-admin",
                                                "rethinkdb": {"host": "10.0.0.9", "password": "pw-west-123"}}]})
    targets = cluster_targets(config, discovered=["west", "north"])
    # "east" names no kubeconfig and is not the default cluster: it is verified through the Host App.
    assert [(t.id, t.origin) for t in targets] == [("east", "remote"), ("west", "config"), ("north", "hostapp")]
    assert [t.id for t in cluster_targets(config, ["north"], local_only=True)] == ["west"]
    west = targets[1]
    assert (west.kubeconfig, west.context, west.rethinkdb.host) == ("/w", "w-admin", "10.0.0.9")
    assert config.redactor.text("pw-west-123 leaked") == "*** leaked"  # per-cluster passwords are secrets
    narrowed = make_config({"clusters": ["east", "west"], "verify.clusters": ["west"]})
    assert [t.id for t in cluster_targets(narrowed)] == ["west"]
    with pytest.raises(UsageError, match="--cluster 'south' is not a known cluster; known: east, west"):
        cluster_targets(make_config({"clusters": ["east", "west"], "verify.clusters": ["south"]}))


@pytest.mark.parametrize("entry", [{"kubeconfig": "/x"}, 42, ""])
def test_a_malformed_clusters_entry_names_its_index(entry: object) -> None:
    with pytest.raises(ConfigError, match=r"key 'clusters\[1\]': must be an id or a mapping with an 'id'"):
        cluster_targets(make_config({"clusters": ["ok", entry]}))


def test_kubeconfig_lookup_order(tmp_path: Path) -> None:
    target = cluster_targets(make_config())[0]
    env = {"KUBECONFIG": f"{tmp_path}/a:{tmp_path}/b"}
    # Set, $KUBECONFIG is the only place (its first file), as for kubectl.
    assert [(str(p), why) for p, why in kubeconfig_candidates(target, env)] == [(f"{tmp_path}/a", "KUBECONFIG")]
    assert [str(p) for p, _ in kubeconfig_candidates(target, {})] == [
        str(Path("~/.guildnet/kubeconfig").expanduser()), str(Path("~/.kube/config").expanduser())]
    named = cluster_targets(make_config({"kubernetes.kubeconfig": "~/k"}))[0]
    assert [why for _, why in kubeconfig_candidates(named, env)] == ["kubernetes.kubeconfig"]


def test_discovery_only_for_per_cluster_layers() -> None:
    config = make_config()
    assert wants_discovery(config, ["all"]) and wants_discovery(config, ["guildnet"])
    assert not wants_discovery(config, ["system", "network"])
    assert not wants_discovery(make_config({"api.discover_clusters": False}), ["all"])


def test_not_found_skips_in_all_and_fails_when_the_layer_is_named() -> None:
    def probe(plan: object) -> None:
        not_found(plan, "kubernetes", "no kubeconfig", hint="set kubernetes.kubeconfig (or KUBECONFIG)")

    skipped = run_check(probe, plan=SimpleNamespace(selection=["all"]))
    assert (skipped.status, skipped.message) == (
        "skip", "not configured: set kubernetes.kubeconfig (or KUBECONFIG) (no kubeconfig)")
    failed = run_check(probe, plan=SimpleNamespace(selection=["kubernetes"]))
    assert (failed.status, failed.message) == ("fail", "no kubeconfig: set kubernetes.kubeconfig (or KUBECONFIG)")
    assert not explicitly_selected(None, "kubernetes")


def test_per_cluster_copies_without_touching_the_original() -> None:
    @check(id="kubernetes.nodes.ready", requires="kubernetes.api.reachable[{cluster}]")
    def nodes(cluster: str) -> str:
        return f"checked {cluster}"

    first = specs_from_function(per_cluster(nodes, ["a", "b"]), "test")
    again = specs_from_function(per_cluster(nodes, ["c"]), "test")
    assert [(s.id, s.target, s.requires) for s in first] == [
        ("kubernetes.nodes.ready[a]", "a", ("kubernetes.api.reachable[a]",)),
        ("kubernetes.nodes.ready[b]", "b", ("kubernetes.api.reachable[b]",))]
    assert [s.id for s in again] == ["kubernetes.nodes.ready[c]"]
    assert get_marks(nodes, "parametrize") == []
    assert first[0].func(cluster="a") == "checked a"


def test_only_the_default_cluster_inherits_the_top_level_settings() -> None:
    values = {"kubernetes.kubeconfig": "/top", "rethinkdb.port": 29999, "defaults.cluster": "b",
              "clusters": ["a", "b", {"id": "c", "kubeconfig": "/c"}]}
    a, b, c = cluster_targets(make_config(values))
    assert (a.kubeconfig, a.origin, a.rethinkdb.port) == (None, "remote", 28015)
    assert (b.kubeconfig, b.origin, b.rethinkdb.port) == ("/top", "config", 29999)
    assert (c.kubeconfig, c.origin, c.rethinkdb.port) == ("/c", "config", 28015)
    [only] = cluster_targets(make_config({"kubernetes.kubeconfig": "/top", "clusters": ["solo"]}))
    assert (only.kubeconfig, only.origin) == ("/top", "config")


@pytest.mark.parametrize(("rethinkdb", "message"), [
    ({"port": "abc"}, r"key 'clusters\[0\].rethinkdb.port': expected a port number \(1-65535\), got 'abc'"),
    ({"port": 70000}, r"got 70000"),
    ({"hots": "x"}, r"key 'clusters\[0\].rethinkdb': unknown key 'hots'"),
])
def test_a_bad_per_cluster_rethinkdb_value_names_its_key(rethinkdb: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cluster_targets(make_config({"clusters": [{"id": "a", "rethinkdb": rethinkdb}]}))


def test_clusters_entries_are_validated_like_settings() -> None:
    typo = r"key 'clusters\[0\]': unknown key 'kubeconfg' \(did you mean 'kubeconfig'\?\)"
    with pytest.raises(ConfigError, match=typo):
        cluster_targets(make_config({"clusters": [{"id": "a", "kubeconfg": "/k"}]}))
    with pytest.raises(ConfigError, match=r"key 'clusters\[0\].kubeconfig': expected a string, got list"):
        cluster_targets(make_config({"clusters": [{"id": "a", "kubeconfig": [1, 2]}]}))
    twice = r"key 'clusters\[1\]': cluster id 'a' is listed twice \(also clusters\[0\]\)"
    with pytest.raises(ConfigError, match=twice):
        cluster_targets(make_config({"clusters": ["a", "a"]}))
    with pytest.raises(UsageError, match=r"--cluster 'lba' is not a known cluster \(did you mean 'lab'\?\)"):
        cluster_targets(make_config({"clusters": ["lab"], "verify.clusters": ["lba"]}))


def test_a_cluster_entry_names_its_own_kubeconfig_setting() -> None:
    config = make_config({"clusters": ["a", {"id": "b", "kubeconfig": "/b.yaml"}]})
    a, b = cluster_targets(config)
    assert kubeconfig_candidates(a, {"KUBECONFIG": "/x"}) == []  # not the default cluster's places
    assert kubeconfig_candidates(b, {}) == [(Path("/b.yaml"), "clusters[1].kubeconfig")]


def test_an_out_of_range_top_level_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"command line, key 'rethinkdb.port': must be <= 65535, "
                                          r"got 99999"):
        cluster_targets(make_config({"rethinkdb.port": 99999}))

"""A configured cluster is the Host App record with that id, else the only record with that name:
each bootstrap makes a UUID, so users name clusters and the Host App keys them by UUID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from mgn_verify.lab import Lab
from tests.helpers import Run


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def _register(lab: Lab, name: str) -> str:
    """``POST /api/deploy/clusters`` as any client may send it (the Host App does not
    de-duplicate names; our client would refuse a second one)."""
    import ssl

    import httpx

    api = yaml.safe_load(lab.config_path.read_text())["api"]
    tls = ssl.create_default_context(cafile=api["ca_bundle"])
    answer = httpx.post(f"{api['base_url']}/api/deploy/clusters", json={"name": name}, verify=tls)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _config(lab: Lab, tmp_path: Path, **extra: object) -> str:
    data = yaml.safe_load(lab.config_path.read_text())
    data.update(extra)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def alpha(lab: Lab) -> str:
    return _register(lab, "alpha")


def test_a_cluster_configured_by_name_is_the_host_apps_uuid_record(
        lab: Lab, alpha: str, tmp_path: Path, mgn: Callable[..., Run]) -> None:
    config = _config(lab, tmp_path, clusters=["lab", "alpha"])
    run = mgn("verify", "guildnet", "--config", config, "--cluster", "alpha")
    registered = run.result("guildnet.cluster.registered[alpha]")
    assert registered["status"] == "pass", registered
    assert alpha in registered["message"] and registered["details"]["id"] == alpha
    # /api/health and /status were asked about the UUID: the record has no kubeconfig (POST
    # /api/deploy/clusters stores none), which is what they report, not "not listed".
    health = run.result("guildnet.cluster.health[alpha]")
    assert health["status"] == "fail" and "no_kubeconfig" in health["message"], health
    # the UUID record is the configured `alpha`, not one more discovered cluster
    assert not any(alpha in cid for cid in run.statuses), sorted(run.statuses)


def test_several_records_of_one_name_fail_naming_their_ids(
        lab: Lab, tmp_path: Path, mgn: Callable[..., Run]) -> None:
    first, second = _register(lab, "beta"), _register(lab, "beta")
    run = mgn("verify", "guildnet", "--config", _config(lab, tmp_path, clusters=["lab", "beta"]),
              "--cluster", "beta")
    registered = run.result("guildnet.cluster.registered[beta]")
    assert registered["status"] == "fail"
    assert first in registered["message"] and second in registered["message"]


def test_an_unregistered_default_cluster_skips_unless_it_is_named(
        lab: Lab, tmp_path: Path, mgn: Callable[..., Run]) -> None:
    config = _config(lab, tmp_path, defaults={"cluster": "ghost"}, api={
        **yaml.safe_load(lab.config_path.read_text())["api"], "discover_clusters": False})
    quiet = mgn("verify", "guildnet", "--config", config)
    assert quiet.result("guildnet.cluster.registered[ghost]")["status"] == "skip"
    named = mgn("verify", "guildnet", "--config", config, "--cluster", "ghost")
    result = named.result("guildnet.cluster.registered[ghost]")
    assert result["status"] == "fail" and "not registered" in result["message"], result
    assert named.exit_code == 1

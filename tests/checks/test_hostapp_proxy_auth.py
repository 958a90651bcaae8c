"""The Host App passes a caller's ``Authorization`` header on to the cluster's API server
(client-go keeps it): proxied requests must go without the Host App token, or the API server
refuses them (and learns the token)."""

from __future__ import annotations

import time

import yaml

from mgn_verify.clients.hostapp import HostAppClient
from mgn_verify.lab import Lab


def test_proxy_get_reaches_the_workspace_with_a_token_configured() -> None:
    with Lab() as lab:
        lab.kube.state.operator.pending_delay = 0.05
        lab.kube.state.operator.running_delay = 0.1
        api = yaml.safe_load(lab.config_path.read_text())["api"]
        assert api["token"], "the lab config has a token: the case this test is about"
        with HostAppClient(api["base_url"], token=api["token"], ca_bundle=api["ca_bundle"]) as client:
            client.create_workspace("lab", {"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                resource = client.workspace_resource("lab", "web") or {}
                if (resource.get("status") or {}).get("phase") == "Running":
                    break
                time.sleep(0.05)
            answer = client.proxy_get("lab", "web", "/")
        assert answer.status == 200, (answer.status, answer.text[:300])
        assert "web" in answer.text


def test_a_temporary_name_resolution_failure_is_dns_and_so_not_retried() -> None:
    import socket

    from mgn_verify.clients._http import RETRY_REASONS, _reason

    error = OSError("[Errno -3] Temporary failure in name resolution")
    error.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    reason, _ = _reason(error)
    assert reason == "dns" and reason not in RETRY_REASONS

"""network.tls.certificate against real TLS servers on 127.0.0.1 with trustme certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mgn_verify.checks import network

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, run_check
from tests.checks.servers import TlsLab


def tls(url: str, **settings: Any) -> Outcome:
    config = make_config({"network.timeout": 2.0, **settings})
    return run_check(network._tls_check(url), config=config, url=url)


def test_valid_certificate(tls_lab: TlsLab) -> None:
    outcome = tls(tls_lab.urls["valid"], **{"network.ca_bundle": tls_lab.ca_bundle})
    assert outcome.status == "pass"
    assert outcome.message.startswith("TLSv1.3, issued by") and "days)" in outcome.message
    assert "127.0.0.1" in outcome.details["names"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("expired", "certificate expired on"),
        ("future", "certificate not valid yet until"),
        ("wrongname", "certificate does not match 127.0.0.1 (issued for example.test)"),
        ("unknownca", "certificate signed by an unknown CA"),
    ],
)
def test_invalid_certificates_have_distinct_messages(tls_lab: TlsLab, case: str, text: str) -> None:
    outcome = tls(tls_lab.urls[case], **{"network.ca_bundle": tls_lab.ca_bundle})
    assert outcome.status == "fail"
    assert text in outcome.message, outcome.message


def test_system_trust_store_does_not_know_the_test_ca(tls_lab: TlsLab) -> None:
    outcome = tls(tls_lab.urls["valid"])  # network.ca_bundle None: verification stays on
    assert outcome.status == "fail" and "unknown CA" in outcome.message


def test_expiring_within_margin_warns(tls_lab: TlsLab) -> None:
    outcome = tls(tls_lab.urls["expiring"], **{"network.ca_bundle": tls_lab.ca_bundle})
    assert outcome.status == "warn" and "within the 30-day margin" in outcome.message
    relaxed = tls(
        tls_lab.urls["expiring"], **{"network.ca_bundle": tls_lab.ca_bundle, "network.tls_warn_days": 2}
    )
    assert relaxed.status == "pass"


def test_https_get_through_the_custom_bundle(tls_lab: TlsLab) -> None:
    url = tls_lab.urls["valid"]
    config = make_config({"network.ca_bundle": tls_lab.ca_bundle})
    outcome = run_check(network._http_check(url), config=config, url=url)
    assert outcome.status == "pass" and outcome.message.startswith("HTTP 200 OK")
    failing = run_check(network._http_check(url), config=make_config({}), url=url)
    assert failing.status == "fail" and "cannot connect" in failing.message


def test_ca_bundle_under_home_is_expanded_by_tls_and_http_alike(
    tls_lab: TlsLab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".guildnet").mkdir(parents=True)
    (home / ".guildnet" / "ca.pem").write_bytes(Path(tls_lab.ca_bundle).read_bytes())
    monkeypatch.setenv("HOME", str(home))
    url = tls_lab.urls["valid"]
    settings = {"network.ca_bundle": "~/.guildnet/ca.pem"}
    assert tls(url, **settings).status == "pass"
    outcome = run_check(network._http_check(url), config=make_config(settings), url=url)
    assert outcome.status == "pass", outcome.message

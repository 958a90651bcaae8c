"""system.certs on real certificates and keys written by trustme/cryptography."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trustme
from mgn_verify.checks import _sys_env

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, run_check

NOW = dt.datetime.now(dt.UTC)


def _check(directory: Path) -> Outcome:
    return run_check(_sys_env.check_certs, config=make_config({"system.certs_dir": str(directory)}))


def _write(
    directory: Path, name: str, leaf: trustme.LeafCert, key_from: trustme.LeafCert | None = None
) -> None:
    directory.mkdir(exist_ok=True)
    leaf.cert_chain_pems[0].write_to_path(str(directory / f"{name}.crt"))
    (key_from or leaf).private_key_pem.write_to_path(str(directory / f"{name}.key"))


def test_valid_certs_with_matching_keys(tmp_path: Path) -> None:
    ca = trustme.CA()
    _write(tmp_path, "server", ca.issue_cert("hostapp.local"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))  # a CA without its key is fine
    outcome = _check(tmp_path)
    assert outcome.status == "pass" and "2 certificates valid" in outcome.message


def test_expired_not_yet_valid_and_wrong_key(tmp_path: Path) -> None:
    ca = trustme.CA()
    _write(
        tmp_path,
        "old",
        ca.issue_cert("a", not_before=NOW - dt.timedelta(days=9), not_after=NOW - dt.timedelta(days=2)),
    )
    _write(
        tmp_path,
        "new",
        ca.issue_cert("b", not_before=NOW + dt.timedelta(days=3), not_after=NOW + dt.timedelta(days=90)),
    )
    _write(tmp_path, "mixed", ca.issue_cert("c"), key_from=ca.issue_cert("d"))
    outcome = _check(tmp_path)
    assert outcome.status == "fail"
    assert "old.crt: expired on" in outcome.message
    assert "new.crt: not valid before" in outcome.message
    assert "mixed.crt: mixed.key is not its private key" in outcome.message


def test_expiring_within_margin_warns(tmp_path: Path) -> None:
    _write(tmp_path, "soon", trustme.CA().issue_cert("a", not_after=NOW + dt.timedelta(days=10)))
    outcome = _check(tmp_path)
    assert outcome.status == "warn" and "soon.crt: expires in" in outcome.message


def test_garbage_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    outcome = _check(tmp_path)
    assert outcome.status == "fail" and "broken.pem: unreadable" in outcome.message
    assert _check(tmp_path / "absent").status == "skip"

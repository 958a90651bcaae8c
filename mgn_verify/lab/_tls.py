"""A small certificate authority for the lab's HTTPS simulators.

Every simulator serves TLS signed by one lab CA, so clients verify for real (no
``verify=False`` anywhere). Keys are ECDSA P-256: generating them is fast enough to create a
fresh CA per test. An expired server certificate can be issued on purpose for the
``tls.expired`` fault.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_HOSTS", "CertPaths", "LabCA", "server_ssl_context"]

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class CertPaths:
    """PEM files of one issued certificate and its private key."""

    cert: Path
    key: Path


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san_entries(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


class LabCA:
    """A self-signed CA whose ``ca.pem`` / ``ca-key.pem`` live in ``directory``."""

    def __init__(self, directory: str | Path, common_name: str = "mgn-verify lab CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = _utcnow()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_path = self.directory / "ca.pem"
        self.ca_key_path = self.directory / "ca-key.pem"
        self.ca_path.write_bytes(self.ca_pem)
        self.ca_key_path.write_bytes(_key_pem(self._key))
        self.ca_key_path.chmod(0o600)

    @property
    def ca_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server_cert(
        self,
        name: str,
        *,
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
    ) -> CertPaths:
        """Issue ``<name>.pem`` / ``<name>-key.pem`` for ``hosts`` (IP or DNS SANs).

        Pass a ``not_after`` in the past to get an expired certificate.
        """
        now = _utcnow()
        start = not_before if not_before is not None else now - _dt.timedelta(hours=1)
        end = not_after if not_after is not None else now + _dt.timedelta(days=397)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        paths = CertPaths(cert=self.directory / f"{name}.pem", key=self.directory / f"{name}-key.pem")
        # The chain file carries the leaf only: clients trust ca.pem directly.
        paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key.write_bytes(_key_pem(key))
        paths.key.chmod(0o600)
        return paths

    def issue_expired_server_cert(self, name: str, *, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> CertPaths:
        """A certificate that expired yesterday (valid signature, wrong dates)."""
        now = _utcnow()
        return self.issue_server_cert(
            name, hosts=hosts, not_before=now - _dt.timedelta(days=10), not_after=now - _dt.timedelta(days=1)
        )


def server_ssl_context(paths: CertPaths, *, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A TLS server context for ``paths``; ALPN pinned to HTTP/1.1 like the Host App."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(paths.cert), keyfile=str(paths.key))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx

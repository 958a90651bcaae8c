"""TLS: verify a server's certificate with ``ssl`` and describe it with ``cryptography``.

Verification always uses a full ``ssl`` context (chain + hostname); the certificate is then
fetched once more without verification only to *describe* what the server presented when
verification failed, so "expired on …" or "issued for example.test" can be said precisely.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography costs ~60 ms to import: only functions that parse certs load it
    from cryptography import x509

__all__ = [
    "CertInfo",
    "TlsFailure",
    "describe",
    "fetch_certificate",
    "load_pem_certs",
    "private_key_matches",
    "ssl_context",
    "verify_server",
]

# OpenSSL X509_V_ERR_* codes that deserve their own message.
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNKNOWN_CA = {2, 18, 19, 20, 21}
_HOSTNAME = {62, 64}  # host name mismatch, IP address mismatch


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now).total_seconds() / 86400

    def to_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


def describe(cert: x509.Certificate) -> CertInfo:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
        names = (*dns_names, *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))
    except x509.ExtensionNotFound:
        names = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return CertInfo(
        cert.subject.rfc4514_string(),
        cert.issuer.rfc4514_string(),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        names,
    )


class TlsFailure(Exception):
    """``kind``: expired, not-yet-valid, hostname, unknown-ca, handshake, connect."""

    def __init__(self, kind: str, message: str, cert: CertInfo | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.cert = cert


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying client context: the system trust store, or ``ca_bundle`` (``~`` expanded)."""
    if ca_bundle:
        return ssl.create_default_context(cafile=str(Path(ca_bundle).expanduser()))
    return ssl.create_default_context()


def _tls_connect(
    address: str, port: int, server_name: str, ctx: ssl.SSLContext, deadline: float
) -> ssl.SSLSocket:
    """Connect and handshake within one deadline: the handshake gets only the time the connect
    left (CPython bounds a whole handshake by the socket timeout, not each read)."""
    raw = socket.create_connection((address, port), timeout=max(deadline - time.monotonic(), 0.001))
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        raw.settimeout(left)
        return ctx.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


def fetch_certificate(address: str, port: int, server_name: str, timeout: float) -> CertInfo | None:
    """The leaf certificate the server presents, unverified (for describing failures only)."""
    from cryptography import x509

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with _tls_connect(address, port, server_name, ctx, time.monotonic() + timeout) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return describe(x509.load_der_x509_certificate(der)) if der else None


def verify_server(
    address: str, port: int, server_name: str, ca_bundle: str | None, timeout: float
) -> tuple[CertInfo, str]:
    """Handshake with full verification, connect and handshake within ``timeout`` together;
    returns the leaf and the TLS version."""
    from cryptography import x509

    ctx = ssl_context(ca_bundle)
    deadline = time.monotonic() + timeout
    try:
        with _tls_connect(address, port, server_name, ctx, deadline) as tls:
            der = tls.getpeercert(binary_form=True)
            version = tls.version() or "?"
    except ssl.SSLCertVerificationError as exc:
        # Describing what was presented gets the time left (a little at least, to say something).
        seen = fetch_certificate(address, port, server_name, max(deadline - time.monotonic(), 0.2))
        raise _verify_failure(exc, seen, server_name) from None
    except ssl.SSLError as exc:
        raise TlsFailure("handshake", f"TLS handshake failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise TlsFailure("connect", f"no complete TLS handshake within {timeout:g} s") from None
    except OSError as exc:
        raise TlsFailure("connect", f"cannot connect: {exc.strerror or exc}") from None
    assert der is not None, "the server sent no certificate"
    return describe(x509.load_der_x509_certificate(der)), version


def _verify_failure(exc: ssl.SSLCertVerificationError, seen: CertInfo | None, server_name: str) -> TlsFailure:
    code = exc.verify_code
    if code == _EXPIRED:
        when = f" on {seen.not_after:%Y-%m-%d %H:%M} UTC" if seen else ""
        return TlsFailure("expired", f"certificate expired{when}", seen)
    if code == _NOT_YET_VALID:
        when = f" until {seen.not_before:%Y-%m-%d %H:%M} UTC" if seen else ""
        return TlsFailure("not-yet-valid", f"certificate not valid yet{when} (or this clock is behind)", seen)
    if code in _HOSTNAME:
        names = f" (issued for {', '.join(seen.names)})" if seen else ""
        return TlsFailure("hostname", f"certificate does not match {server_name}{names}", seen)
    if code in _UNKNOWN_CA:
        issuer = f" {seen.issuer}" if seen else ""
        return TlsFailure(
            "unknown-ca", f"certificate signed by an unknown CA{issuer} ({exc.verify_message})", seen
        )
    return TlsFailure("verify", f"certificate verification failed: {exc.verify_message}", seen)


def load_pem_certs(path: Path) -> list[x509.Certificate]:
    """Certificates in a PEM file ([] when it holds none, e.g. a key file)."""
    from cryptography import x509

    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    return x509.load_pem_x509_certificates(data)


def private_key_matches(cert: x509.Certificate, key_path: Path) -> bool:
    """Whether the (unencrypted PEM) key at ``key_path`` is the certificate's key."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return bool(key.public_key().public_bytes(enc, fmt) == cert.public_key().public_bytes(enc, fmt))

"""RethinkDB wire protocol pieces for the lab simulator: constants, V1_0 handshake, framing.

Everything here follows ``protocols.md`` §1.1-§1.4 (server 2.4.4, driver 2.4.x): the
NUL-terminated JSON handshake with real SCRAM-SHA-256, and the token/length/JSON frames
of the query phase. Socket I/O is kept in small helpers so the connection loop in
``rethinkdb.py`` reads like the protocol description.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "V1_0_MAGIC",
    "ConnectionClosed",
    "HandshakeFailed",
    "ReqlFailure",
    "ScramCredentials",
    "encode_response",
    "read_frame",
    "run_handshake",
]

# --- constants (protocols.md §1.1) -------------------------------------------------------

V1_0_MAGIC: Final = 0x34C2BDC3
SERVER_VERSION: Final = "2.4.4"

Q_START: Final = 1
Q_CONTINUE: Final = 2
Q_STOP: Final = 3
Q_NOREPLY_WAIT: Final = 4
Q_SERVER_INFO: Final = 5

R_SUCCESS_ATOM: Final = 1
R_SUCCESS_SEQUENCE: Final = 2
R_SUCCESS_PARTIAL: Final = 3
R_WAIT_COMPLETE: Final = 4
R_SERVER_INFO: Final = 5
R_CLIENT_ERROR: Final = 16
R_COMPILE_ERROR: Final = 17
R_RUNTIME_ERROR: Final = 18

E_INTERNAL: Final = 1000000
E_RESOURCE_LIMIT: Final = 2000000
E_QUERY_LOGIC: Final = 3000000
E_NON_EXISTENCE: Final = 3100000
E_OP_FAILED: Final = 4100000
E_OP_INDETERMINATE: Final = 4200000
E_USER: Final = 5000000
E_PERMISSION_ERROR: Final = 6000000

# The server reads handshake messages into a bounded buffer (error 7 beyond it).
MAX_HANDSHAKE_MESSAGE: Final = 2048
# A query frame bigger than this is treated as a broken client rather than buffered.
MAX_QUERY_BYTES: Final = 64 * 1024 * 1024

_UNSUPPORTED_MAGIC = (
    "ERROR: Received an unsupported protocol version. This port is for RethinkDB queries. "
    "Does your client driver version not match the server?\n"
)


class ConnectionClosed(Exception):
    """The peer closed the socket (or the simulator is shutting it down)."""


class HandshakeFailed(Exception):
    """The handshake ended with an error message already sent to the client."""


class ReqlFailure(Exception):
    """A query failure to be sent back as a CLIENT/COMPILE/RUNTIME_ERROR response."""

    def __init__(self, message: str, response_type: int = R_RUNTIME_ERROR,
                 error_type: int | None = E_QUERY_LOGIC) -> None:
        super().__init__(message)
        self.message = message
        self.response_type = response_type
        # `e` only exists on RUNTIME_ERROR responses (protocols.md §1.4).
        self.error_type = error_type if response_type == R_RUNTIME_ERROR else None


def dumps(value: Any) -> bytes:
    """Compact JSON, as the server writes it (no spaces, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# --- socket helpers -----------------------------------------------------------------------


def recv_exact(sock: socket.socket, length: int) -> bytes:
    buf = bytearray()
    while len(buf) < length:
        chunk = sock.recv(length - len(buf))
        if not chunk:
            raise ConnectionClosed
        buf += chunk
    return bytes(buf)


def recv_until_nul(sock: socket.socket, limit: int = MAX_HANDSHAKE_MESSAGE) -> bytes | None:
    """Read one NUL-terminated handshake message; None if it exceeds ``limit``."""
    buf = bytearray()
    while True:
        # Byte-at-a-time is fine: handshake messages are tiny and must not over-read
        # into the query phase.
        ch = sock.recv(1)
        if not ch:
            raise ConnectionClosed
        if ch == b"\x00":
            return bytes(buf)
        buf += ch
        if len(buf) > limit:
            return None


def send_handshake_json(sock: socket.socket, obj: dict[str, Any]) -> None:
    # The server serialises datum objects, so keys come out sorted (protocols.md §1.2).
    sock.sendall(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\x00")


# --- SCRAM-SHA-256 -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScramCredentials:
    """What the server stores for a user: salt, iteration count, derived keys."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: str, salt: bytes | None = None, iterations: int = 4096) -> ScramCredentials:
        salt = os.urandom(16) if salt is None else salt
        # The driver encodes the password as latin-1 (six.b), so the server must too.
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("latin-1"), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return cls(
            salt=salt,
            iterations=iterations,
            stored_key=hashlib.sha256(client_key).digest(),
            server_key=hmac.new(salted, b"Server Key", hashlib.sha256).digest(),
        )


def _parse_attrs(message: str) -> dict[str, str] | None:
    """Split ``k=v,k=v`` SCRAM attributes; None when malformed (error 10)."""
    attrs: dict[str, str] = {}
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            return None
        attrs[part[0]] = part[2:]
    return attrs


def _unescape_username(raw: str) -> str | None:
    # RFC 5802 saslname: only "=2C" and "=3D" escapes are legal.
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "=":
            code = raw[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                return None
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _fail(sock: socket.socket, code: int, text: str) -> HandshakeFailed:
    """Send the server's handshake error object, shut the write side, return the exception."""
    send_handshake_json(sock, {"error": text, "error_code": code, "success": False})
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    return HandshakeFailed(text)


def _recv_handshake_json(sock: socket.socket) -> Any:
    """The next NUL-terminated handshake message, parsed (any JSON value)."""
    raw = recv_until_nul(sock)
    if raw is None:
        raise _fail(sock, 7, "Limited read buffer size.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fail(sock, 8, "Invalid JSON object.") from None


def run_handshake(sock: socket.socket, users: dict[str, ScramCredentials]) -> str:
    """Serve the V1_0 handshake on ``sock``; return the authenticated user name.

    Raises HandshakeFailed (after telling the client) or ConnectionClosed.
    """
    magic = recv_exact(sock, 4)
    if struct.unpack("<I", magic)[0] != V1_0_MAGIC:
        # Pre-V1_0 plain-text error form (protocols.md §1.2).
        sock.sendall(_UNSUPPORTED_MAGIC.encode("utf-8") + b"\x00")
        raise HandshakeFailed("unsupported protocol version")
    # The banner goes out as soon as the magic is read, before the JSON is parsed.
    send_handshake_json(sock, {"max_protocol_version": 0, "min_protocol_version": 0,
                               "server_version": SERVER_VERSION, "success": True})

    first = _recv_handshake_json(sock)
    if not isinstance(first, dict):
        raise _fail(sock, 8, "Invalid JSON object.")
    version = first.get("protocol_version")
    if not isinstance(version, int | float) or isinstance(version, bool):
        raise _fail(sock, 1, "Expected a number for `protocol_version`.")
    if version != 0:
        raise _fail(sock, 2, "Unsupported `protocol_version`.")
    method = first.get("authentication_method")
    if not isinstance(method, str):
        raise _fail(sock, 3, "Expected a string for `authentication_method`.")
    if method != "SCRAM-SHA-256":
        raise _fail(sock, 4, "Unsupported `authentication_method`.")
    auth = first.get("authentication")
    if not isinstance(auth, str):
        raise _fail(sock, 5, "Expected a string for `authentication`.")
    if not auth.startswith("n,"):
        raise _fail(sock, 15, "Channel binding is not supported.")
    gs2_end = auth.find(",", 2)
    if gs2_end < 0:
        raise _fail(sock, 10, "Invalid encoding")
    client_first_bare = auth[gs2_end + 1 :]
    attrs = _parse_attrs(client_first_bare)
    if attrs is None or "n" not in attrs or "r" not in attrs:
        raise _fail(sock, 10, "Invalid encoding")
    if "m" in attrs:
        raise _fail(sock, 11, "Extensions not supported")
    username = _unescape_username(attrs["n"])
    if username is None:
        raise _fail(sock, 18, "Invalid username encoding")

    creds = users.get(username)
    # An unknown user still gets a normal server-first; failure comes at the next step.
    effective = creds if creds is not None else ScramCredentials.derive("", iterations=4096)
    nonce = attrs["r"] + base64.standard_b64encode(os.urandom(18)).decode("ascii")
    server_first = "r={},s={},i={}".format(
        nonce, base64.standard_b64encode(effective.salt).decode("ascii"), effective.iterations
    )
    send_handshake_json(sock, {"authentication": server_first, "success": True})

    final = _recv_handshake_json(sock)
    if not isinstance(final, dict) or not isinstance(final.get("authentication"), str):
        raise _fail(sock, 5, "Expected a string for `authentication`.")
    client_final: str = final["authentication"]
    fattrs = _parse_attrs(client_final)
    if fattrs is None or "p" not in fattrs or not client_final.endswith(",p=" + fattrs["p"]):
        raise _fail(sock, 10, "Invalid encoding")
    if fattrs.get("c") != "biws":
        raise _fail(sock, 10, "Invalid encoding")
    if fattrs.get("r") != nonce:
        raise _fail(sock, 20, "Other error")
    if creds is None:
        raise _fail(sock, 17, "Unknown user")

    without_proof = client_final[: -len(",p=" + fattrs["p"])]
    auth_message = ",".join((client_first_bare, server_first, without_proof)).encode("utf-8")
    client_signature = hmac.new(creds.stored_key, auth_message, hashlib.sha256).digest()
    try:
        proof = base64.b64decode(fattrs["p"], validate=True)
    except ValueError:
        raise _fail(sock, 10, "Invalid encoding") from None
    if len(proof) != len(client_signature):
        raise _fail(sock, 12, "Wrong password")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    if not hmac.compare_digest(hashlib.sha256(client_key).digest(), creds.stored_key):
        raise _fail(sock, 12, "Wrong password")

    server_signature = hmac.new(creds.server_key, auth_message, hashlib.sha256).digest()
    send_handshake_json(sock, {"authentication": "v=" + base64.standard_b64encode(server_signature).decode(),
                               "success": True})
    return username


# --- query phase framing (protocols.md §1.3, §1.4) ---------------------------------------


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one query frame: (token, JSON payload)."""
    header = recv_exact(sock, 12)
    token, length = struct.unpack("<qI", header)
    if length > MAX_QUERY_BYTES:
        raise ConnectionClosed
    return token, recv_exact(sock, length)


def encode_response(token: int, rtype: int, data: list[Any], *, error_type: int | None = None,
                    backtrace: list[Any] | None = None, notes: list[int] | None = None) -> bytes:
    """Frame one response. ``e`` only on t=18; ``n`` always on t=2/3."""
    body: dict[str, Any] = {"t": rtype, "r": data}
    if rtype == R_RUNTIME_ERROR and error_type is not None:
        body["e"] = error_type
    if rtype in (R_SUCCESS_SEQUENCE, R_SUCCESS_PARTIAL):
        body["n"] = [] if notes is None else notes
    if rtype >= R_CLIENT_ERROR:
        body["b"] = [] if backtrace is None else backtrace
    payload = dumps(body)
    return struct.pack("<qI", token, len(payload)) + payload

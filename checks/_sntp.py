"""A minimal SNTPv4 client (RFC 4330) over UDP: one request, offset and delay."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

__all__ = ["NTP_EPOCH_OFFSET", "SntpError", "SntpReply", "query", "to_ntp"]

#: Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
NTP_EPOCH_OFFSET = 2_208_988_800
_PACKET = struct.Struct("!BBbb11I")  # 48 bytes: flags, stratum, poll, precision, 11 words


class SntpError(Exception):
    """``kind``: timeout, kiss (kiss-o'-death / unsynchronised server), bad-reply, error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class SntpReply:
    offset_s: float  # server clock minus ours
    delay_s: float
    stratum: int
    reference: str


def to_ntp(unix: float) -> tuple[int, int]:
    seconds = unix + NTP_EPOCH_OFFSET
    whole = int(seconds)
    return whole & 0xFFFFFFFF, int((seconds - whole) * 2**32) & 0xFFFFFFFF


def _from_ntp(sec: int, frac: int) -> float:
    return sec - NTP_EPOCH_OFFSET + frac / 2**32


def query(host: str, port: int, timeout: float) -> SntpReply:
    """Ask ``host`` (an address) for the time."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    t1 = time.time()
    sec, frac = to_ntp(t1)
    # LI=0, VN=4, mode=3 (client); the transmit timestamp comes back as the origin timestamp.
    request = _PACKET.pack(0x23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sec, frac)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(512)
        except TimeoutError:
            raise SntpError("timeout", f"no NTP answer from {host}:{port} within {timeout:g} s") from None
        except OSError as exc:
            raise SntpError("error", f"{host}:{port}: {exc.strerror or exc}") from None
    t4 = time.time()
    if len(data) < _PACKET.size:
        raise SntpError("bad-reply", f"{host}:{port} sent {len(data)} bytes, not an NTP packet")
    fields = _PACKET.unpack(data[: _PACKET.size])
    flags, stratum = fields[0], fields[1]
    words = fields[4:]
    mode, leap = flags & 0x7, flags >> 6
    if mode not in (4, 5):
        raise SntpError("bad-reply", f"{host}:{port} answered with NTP mode {mode}, not a server reply")
    if (words[5], words[6]) != (sec, frac):
        raise SntpError("bad-reply", f"{host}:{port} answered a different request (origin mismatch)")
    reference = struct.pack("!I", words[2])
    if stratum == 0:
        code = reference.decode("ascii", "replace").strip("\x00")
        raise SntpError("kiss", f"{host}:{port} sent a kiss-o'-death ({code or 'no code'})")
    if leap == 3:
        raise SntpError("kiss", f"{host}:{port} is not synchronised itself (leap indicator 3)")
    t2 = _from_ntp(words[7], words[8])
    t3 = _from_ntp(words[9], words[10])
    offset = ((t2 - t1) + (t3 - t4)) / 2
    delay = (t4 - t1) - (t3 - t2)
    ref = (
        reference.decode("ascii", "replace").strip("\x00") if stratum == 1 else ".".join(map(str, reference))
    )
    return SntpReply(offset, max(delay, 0.0), stratum, ref)

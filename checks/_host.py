"""Readers for /proc, /sys and /etc below an injectable root (``system.root``).

Every host fact the system layer needs that a file can give is read here, relative to
``Host.root``: tests point the root at a tree built in ``tmp_path`` to show states the test
machine cannot (cgroup v2 without ``pids``, swap on, leftovers of an old install…). Facts that
only a syscall gives (uid, rlimits, adjtimex) are read from the live process and are not
redirected.
"""

from __future__ import annotations

import ctypes
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CgroupInfo", "Host", "Route", "adjtimex_state", "parse_assignments"]


def parse_assignments(text: str | None) -> dict[str, str]:
    """``KEY=value`` lines of a shell-style file (os-release, ufw.conf, firewalld.conf), quotes
    removed; comments and lines without ``=`` are passed over."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        key = key.strip()
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip('"').strip("'")
    return out


@dataclass(frozen=True, slots=True)
class Route:
    """A default route from /proc/net/route or /proc/net/ipv6_route."""

    iface: str
    gateway: str
    family: int  # 4 or 6


@dataclass(frozen=True, slots=True)
class CgroupInfo:
    """``version`` 2 (unified at /sys/fs/cgroup), 1 (legacy or hybrid) or 0 (none mounted)."""

    version: int
    controllers: frozenset[str] = field(default_factory=frozenset)
    mountpoint: str = ""


class Host:
    """File-backed host facts below ``root`` ("/" for the real machine). One instance serves
    one run (the ``system_host`` fixture), so each file is read once however many checks ask."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)
        self._texts: dict[str, str | None] = {}
        self._processes: list[tuple[int, str, str]] | None = None

    def path(self, absolute: str) -> Path:
        """``absolute`` (e.g. "/proc/swaps") below the root."""
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str) -> str | None:
        """File text, or None when missing or unreadable (callers decide what absent means);
        read on first use, then remembered."""
        if absolute not in self._texts:
            try:
                text: str | None = self.path(absolute).read_text(errors="replace")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
                text = None
            self._texts[absolute] = text
        return self._texts[absolute]

    def processes(self) -> list[tuple[int, str, str]]:
        """(pid, comm, base name of argv[0]) of every running process: the live machine, not
        below the root (psutil), scanned once for the firewall, services and time checks."""
        if self._processes is None:
            import psutil  # lazy: only runs whose checks look at processes pay for it

            self._processes = [
                (proc.pid, proc.info["name"] or "", os.path.basename((proc.info["cmdline"] or [""])[0]))
                for proc in psutil.process_iter(["name", "cmdline"])
            ]
        return self._processes

    def sysctl(self, name: str) -> str | None:
        """``net.ipv4.ip_forward`` → contents of /proc/sys/net/ipv4/ip_forward, stripped."""
        text = self.read("/proc/sys/" + name.replace(".", "/"))
        return None if text is None else text.strip()

    def kernel_release(self) -> str:
        text = self.read("/proc/sys/kernel/osrelease")
        return text.strip() if text else os.uname().release

    def hostname(self) -> str:
        text = self.read("/proc/sys/kernel/hostname")
        return text.strip() if text else os.uname().nodename

    def os_release(self) -> dict[str, str]:
        return parse_assignments(self.read("/etc/os-release") or self.read("/usr/lib/os-release"))

    def swaps(self) -> list[tuple[str, int]]:
        """Active swap areas as (device, size KiB); the header line is dropped."""
        text = self.read("/proc/swaps") or ""
        rows = []
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                rows.append((parts[0], int(parts[2])))
        return rows

    def mounts(self) -> list[tuple[str, str, str]]:
        """(device, mountpoint, fstype) from /proc/mounts."""
        text = self.read("/proc/mounts") or self.read("/proc/self/mounts") or ""
        rows = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3:
                rows.append((parts[0], parts[1], parts[2]))
        return rows

    def cgroups(self) -> CgroupInfo:
        """Which cgroup hierarchy kubelet would see, and its controllers."""
        mounts = self.mounts()
        for _, point, fstype in mounts:
            if fstype == "cgroup2" and point == "/sys/fs/cgroup":
                text = self.read("/sys/fs/cgroup/cgroup.controllers") or ""
                return CgroupInfo(2, frozenset(text.split()), point)
        v1: set[str] = set()
        for _, point, fstype in mounts:
            if fstype == "cgroup" and point.startswith("/sys/fs/cgroup/"):
                # A v1 mount point may join several controllers ("cpu,cpuacct").
                v1.update(c for c in point.rsplit("/", 1)[-1].split(",") if not c.startswith("name="))
        if v1:
            return CgroupInfo(1, frozenset(v1), "/sys/fs/cgroup")
        return CgroupInfo(0)

    def loaded_modules(self) -> set[str] | None:
        """Names in /proc/modules; None when the kernel has no module support (file absent)."""
        text = self.read("/proc/modules")
        if text is None:
            return None
        return {line.split()[0] for line in text.splitlines() if line.strip()}

    def module_state(self, name: str) -> tuple[str, str]:
        """("loaded" | "builtin" | "loadable" | "missing", evidence)."""
        loaded = self.loaded_modules()
        if loaded is not None and name in loaded:
            return "loaded", "/proc/modules"
        if self.path(f"/sys/module/{name}").is_dir():
            return "loaded", f"/sys/module/{name}"
        # The feature a module provides is the most reliable evidence on kernels built
        # without modules (then /proc/modules does not exist at all).
        feature = {"br_netfilter": "/proc/sys/net/bridge/bridge-nf-call-iptables"}.get(name)
        if feature and self.path(feature).exists():
            return "builtin", feature
        if name == "overlay" and "overlay" in (self.read("/proc/filesystems") or "").split():
            return "builtin", "/proc/filesystems"
        moddir = f"/lib/modules/{self.kernel_release()}"
        builtin = self.read(f"{moddir}/modules.builtin") or ""
        if any(line.rsplit("/", 1)[-1] == f"{name}.ko" for line in builtin.splitlines()):
            return "builtin", f"{moddir}/modules.builtin"
        deps = self.read(f"{moddir}/modules.dep") or ""
        for line in deps.splitlines():
            module = line.split(":", 1)[0].rsplit("/", 1)[-1]
            if module.split(".ko", 1)[0].replace("-", "_") == name:
                return "loadable", f"{moddir}/modules.dep"
        return "missing", "not in /proc/modules, /sys/module or " + moddir

    def kernel_config(self) -> tuple[dict[str, str], str] | None:
        """CONFIG_* options and where they came from, or None when no config is readable."""
        release = self.kernel_release()
        for candidate in ("/proc/config.gz", f"/boot/config-{release}", f"/lib/modules/{release}/config"):
            path = self.path(candidate)
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            text = (gzip.decompress(raw) if candidate.endswith(".gz") else raw).decode(errors="replace")
            options: dict[str, str] = {}
            for line in text.splitlines():
                if line.startswith("CONFIG_") and "=" in line:
                    key, _, value = line.partition("=")
                    options[key[len("CONFIG_") :]] = value
            return options, candidate
        return None

    def default_routes(self) -> list[Route]:
        routes = []
        for line in (self.read("/proc/net/route") or "").splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
                raw = bytes.fromhex(parts[2])[::-1]  # little-endian hex
                routes.append(Route(parts[0], ".".join(str(b) for b in raw), 4))
        for line in (self.read("/proc/net/ipv6_route") or "").splitlines():
            parts = line.split()
            if len(parts) >= 10 and parts[0] == "0" * 32 and parts[1] == "00" and parts[9] != "lo":
                gw = ":".join(parts[4][i : i + 4] for i in range(0, 32, 4))
                routes.append(Route(parts[9], gw, 6))
        return routes

    def hosts_lookup(self, name: str) -> list[str]:
        """Addresses /etc/hosts gives ``name`` (what nsswitch "files" answers first)."""
        found = []
        wanted = name.rstrip(".").lower()
        for line in (self.read("/etc/hosts") or "").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and wanted in (f.lower() for f in fields[1:]):
                found.append(fields[0])
        return found

    def nameservers(self, resolv_conf: str = "/etc/resolv.conf") -> list[str] | None:
        """``nameserver`` lines, or None when the file is missing."""
        text = self.read(resolv_conf)
        if text is None:
            return None
        return [
            line.split()[1]
            for line in text.splitlines()
            if line.strip().startswith("nameserver") and len(line.split()) >= 2
        ]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (x86-64/aarch64 layout: long fields, padding at the end).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def adjtimex_state() -> tuple[bool, float] | None:
    """(kernel clock synchronised, max error in seconds) from adjtimex(2) with modes=0 (read
    only, no privilege needed); None when the call is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = _Timex()
        state = libc.adjtimex(ctypes.byref(buf))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    synced = state != TIME_ERROR and not buf.status & STA_UNSYNC
    return synced, buf.maxerror / 1e6

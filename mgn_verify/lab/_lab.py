"""``Lab``: start the five GuildNet simulators together and write a ready mgn config for them.

::

    with Lab(faults=["rethinkdb.down"]) as lab:
        run_mgn("verify", "all", "--config", str(lab.config_path))
        lab.clear("rethinkdb.down")

Everything listens on 127.0.0.1 (free ports) or on a Unix socket inside the lab's working
directory; nothing is started before ``start()``. One ``FaultSet`` is shared by all simulators,
so ``inject``/``clear`` take effect on the next request without a restart.

Several clusters: ``Lab(clusters=("lab", "lab-2"))``. The first cluster is the one above; each
other cluster gets its own Kubernetes and RethinkDB simulators with its OWN ``FaultSet``
(``lab.inject("kubernetes.down", cluster="lab-2")``), and the one Host App manages them all.
The config then lists every cluster under ``clusters:``.

A bare lab: ``Lab(bare=True)``. Its clusters have nodes, CoreDNS, CNI, a StorageClass and MetalLB
but no GuildNet (no Workspace/Capability CRDs, no ``guildnet-system`` operator, no RethinkDB
Service or StatefulSet), and the Host App has no cluster registered: what ``mgn install`` (and
``POST /api/bootstrap``) start from. The config file is the same.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._lab_clusters import LabCluster, cluster_faults, prober, start_cluster
from mgn_verify.lab._lab_config import lab_config
from mgn_verify.lab._tailnet import Tailnet

if TYPE_CHECKING:
    from mgn_verify.lab._tls import LabCA
    from mgn_verify.lab.headscale import HeadscaleSimulator
    from mgn_verify.lab.hostapp import HostAppSimulator, RequestRecord
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator
    from mgn_verify.lab.tailscale import TailscaleSimulator

__all__ = ["CONFIG_FILENAME", "Lab", "LabCluster", "cluster_faults", "known_faults"]

CONFIG_FILENAME = "mgn-lab.yaml"
# Room for "/tailscaled.sock" inside the 107 usable bytes of a Unix socket path.
_MAX_SOCKET_DIR = 90


def known_faults() -> frozenset[str]:
    """Every fault name some lab simulator understands."""
    # Imported here, not at module level: ``import mgn_verify.lab`` must stay cheap.
    from mgn_verify.lab.headscale import HeadscaleSimulator
    from mgn_verify.lab.hostapp import HostAppSimulator
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator
    from mgn_verify.lab.tailscale import TailscaleSimulator

    names: set[str] = set()
    for simulator in (
        KubeSimulator,
        HostAppSimulator,
        RethinkDBSimulator,
        TailscaleSimulator,
        HeadscaleSimulator,
    ):
        names.update(simulator.FAULTS)
    return frozenset(names)


_T = TypeVar("_T")


def _need(value: _T | None, what: str) -> _T:
    if value is None:
        raise RuntimeError(f"lab is not running: no {what}")
    return value


class Lab:
    """Kubernetes API, Host App, RethinkDB, tailscaled and Headscale simulators, started together."""

    def __init__(
        self,
        faults: Iterable[str] = (),
        *,
        workdir: str | os.PathLike[str] | None = None,
        cluster_id: str = "lab",
        clusters: Sequence[str] | None = None,
        bare: bool = False,
    ) -> None:
        # Validates the names now: a typo fails before anything starts, with a suggestion.
        self._faults = FaultSet(known_faults(), faults)
        self._requested_workdir = Path(workdir) if workdir is not None else None
        ids = [str(c) for c in clusters] if clusters else [cluster_id]
        if len(set(ids)) != len(ids) or not all(ids):
            raise ValueError(f"cluster ids must be distinct and non-empty: {ids}")
        self.cluster_id = ids[0]
        self.bare = bare
        self._extra: dict[str, LabCluster] = {
            cid: LabCluster(cid, FaultSet(cluster_faults()), secrets.token_urlsafe(24), secrets.token_urlsafe(18))
            for cid in ids[1:]
        }
        self.api_token = secrets.token_urlsafe(24)
        self.kube_token = secrets.token_urlsafe(24)
        self.rethinkdb_password = secrets.token_urlsafe(18)
        self._stack: contextlib.ExitStack | None = None
        self._workdir: Path | None = None
        self._config_path: Path | None = None
        self._ca: LabCA | None = None
        self._kube: KubeSimulator | None = None
        self._hostapp: HostAppSimulator | None = None
        self._rethinkdb: RethinkDBSimulator | None = None
        self._headscale: HeadscaleSimulator | None = None
        self._tailscale: TailscaleSimulator | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._stack is not None

    def start(self) -> Lab:
        """Start every simulator and write the config; on any failure stop what already runs."""
        if self._stack is not None:
            raise RuntimeError("lab is already running")
        stack = contextlib.ExitStack()
        self._stack = stack
        try:
            self._start_all(stack)
        except BaseException:
            self._stack = None
            with contextlib.suppress(Exception):
                # The original error matters more than a secondary one from cleanup.
                stack.close()
            self._forget()
            raise
        return self

    def stop(self) -> None:
        """Stop every simulator (each one even if another fails) and remove a temp workdir."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            stack.close()
        finally:
            self._forget()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_all(self, stack: contextlib.ExitStack) -> None:
        from mgn_verify.lab._tls import LabCA
        from mgn_verify.lab.headscale import HeadscaleSimulator
        from mgn_verify.lab.hostapp import HostAppSimulator
        from mgn_verify.lab.kube import KubeSimulator
        from mgn_verify.lab.rethinkdb import RethinkDBSimulator
        from mgn_verify.lab.tailscale import TailscaleSimulator

        if self._requested_workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="mgn-lab-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        else:
            workdir = self._requested_workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir
        self._ca = LabCA(workdir / "pki")

        kube = KubeSimulator(ca=self._ca, faults=self._faults, token=self.kube_token, bare=self.bare)
        self._kube = kube
        kube.start()
        stack.callback(kube.stop)
        kubeconfig = workdir / "kubeconfig.yaml"
        kube.write_kubeconfig(kubeconfig)

        rethinkdb = RethinkDBSimulator(faults=self._faults, password=self.rethinkdb_password,
                                       cluster_id=self.cluster_id)
        self._rethinkdb = rethinkdb
        rethinkdb.start()
        stack.callback(rethinkdb.stop)
        # The cluster's `rethinkdb` LoadBalancer Service is how the Host App (and any kube client)
        # finds the database: point it at the simulator's real port.
        kube.state.set_rethinkdb_endpoint(rethinkdb.host, rethinkdb.port)

        for extra in self._extra.values():
            start_cluster(stack, extra, self.ca, workdir, bare=self.bare)

        hostapp = HostAppSimulator(
            ca=self._ca,
            faults=self._faults,
            kube=kube,
            cluster_id=self.cluster_id,
            rdb_probe=self._probe_rethinkdb,
            register_cluster=not self.bare,
        )
        for extra in self._extra.values():
            kube_ = _need(extra.kube, "kube")
            hostapp.add_cluster(extra.id, kube_, faults=extra.faults, registered=not self.bare,
                                rdb_probe=prober(_need(extra.rethinkdb, "rethinkdb"), kube_))
        self._hostapp = hostapp
        hostapp.start()
        stack.callback(hostapp.stop)

        # One roster for both: tailscaled's peers are the nodes Headscale lists.
        tailnet = Tailnet.default()
        headscale = HeadscaleSimulator(faults=self._faults, tailnet=tailnet)
        self._headscale = headscale
        headscale.start()
        stack.callback(headscale.stop)

        socket_dir_ok = len(os.fsencode(workdir)) <= _MAX_SOCKET_DIR
        tailscale = TailscaleSimulator(
            faults=self._faults,
            socket_path=workdir / "tailscaled.sock" if socket_dir_ok else None,
            tailnet=tailnet,
            login_server=headscale.url,
        )
        self._tailscale = tailscale
        tailscale.start()
        stack.callback(tailscale.stop)

        self._config_path = workdir / CONFIG_FILENAME
        self._config_path.write_text(yaml.safe_dump(self.config(kubeconfig), sort_keys=False))

    def _probe_rethinkdb(self, host: str, port: int) -> str | None:
        """The Host App's database probe. The address it discovers in the cluster is the
        RethinkDB simulator's (the Service points there); whatever address it is given, the
        database it reaches is the simulator, so ``rethinkdb.down`` shows there too."""
        rethinkdb = self._rethinkdb
        if rethinkdb is None:
            return f"dial tcp {host}:{port}: connect: connection refused"
        return prober(rethinkdb, self._kube)(host, port)

    def _forget(self) -> None:
        self._ca = self._kube = self._hostapp = self._rethinkdb = None
        self._headscale = self._tailscale = None
        self._workdir = self._config_path = None
        for extra in self._extra.values():
            extra.kube = extra.rethinkdb = extra.kubeconfig_path = None

    # -- the config file ---------------------------------------------------------------------

    def config(self, kubeconfig: Path) -> dict[str, Any]:
        """The mgn config (as written to ``config_path``) for this running lab."""
        return lab_config(self, kubeconfig, list(self._extra.values()))

    def summary(self) -> dict[str, Any]:
        """What a human (or ``mgn lab status``) wants to know about the running lab."""
        return {
            "config_path": str(self.config_path),
            "workdir": str(self.workdir),
            "faults": sorted(self.faults),
            "bare": self.bare,
            "kubernetes": self.kube.url,
            "hostapp": self.hostapp.url,
            "rethinkdb": f"127.0.0.1:{self.rethinkdb.port}",
            "tailscale": self.tailscale.socket_path,
            "headscale": self.headscale.url,
            **({"clusters": {c.id: {"kubernetes": _need(c.kube, "kube").url, "faults": sorted(c.faults.snapshot()),
                                    "rethinkdb": f"127.0.0.1:{_need(c.rethinkdb, 'rethinkdb').port}"}
                             for c in self._extra.values()}} if self._extra else {}),
        }

    # -- faults ------------------------------------------------------------------------------

    @property
    def known_faults(self) -> frozenset[str]:
        return self._faults.known

    @property
    def faults(self) -> frozenset[str]:
        """The faults active right now."""
        return self._faults.snapshot()

    def _fault_set(self, cluster: str | None) -> FaultSet:
        if cluster is None or cluster == self.cluster_id:
            return self._faults
        if cluster not in self._extra:
            raise ValueError(f"unknown cluster {cluster!r}; the lab has {', '.join(self.cluster_ids)}")
        return self._extra[cluster].faults

    def inject(self, name: str, *, cluster: str | None = None) -> None:
        """Activate fault ``name``; an unknown name raises ``UnknownFaultError`` with a suggestion.
        ``cluster``: an extra cluster's own faults (default: the first cluster and the shared
        components, Host App, tailscaled, Headscale)."""
        self._fault_set(cluster).inject(name)
        self._sync_faults()

    def clear(self, name: str, *, cluster: str | None = None) -> None:
        self._fault_set(cluster).clear(name)
        self._sync_faults()

    def clear_all(self) -> None:
        """Clear every fault, those of every cluster included."""
        for faults in (self._faults, *(c.faults for c in self._extra.values())):
            for name in faults.snapshot():
                faults.clear(name)
        self._sync_faults()

    def cluster_faults(self, cluster: str) -> frozenset[str]:
        """The faults active right now on ``cluster`` (the first: the shared set)."""
        return self._fault_set(cluster).snapshot()

    def _sync_faults(self) -> None:
        # Faults that make a listener disappear are applied by a watcher thread; simulators
        # with a ``sync_faults`` method apply them now, so the caller's next request sees them.
        extra = [sim for c in self._extra.values() for sim in (c.kube, c.rethinkdb)]
        for simulator in (self._kube, self._hostapp, self._rethinkdb, self._headscale, self._tailscale, *extra):
            sync = getattr(simulator, "sync_faults", None)
            if callable(sync):
                sync()

    # -- accessors ---------------------------------------------------------------------------

    @property
    def cluster_ids(self) -> tuple[str, ...]:
        return (self.cluster_id, *self._extra)

    def cluster(self, cluster_id: str) -> LabCluster:
        """One cluster's simulators (running) and secrets; the first one shares the lab's faults."""
        if cluster_id == self.cluster_id:
            return LabCluster(self.cluster_id, self._faults, self.kube_token, self.rethinkdb_password,
                              self.kube, self.rethinkdb, self.workdir / "kubeconfig.yaml")
        self._fault_set(cluster_id)  # a clear error for an unknown id
        return self._extra[cluster_id]

    @property
    def workdir(self) -> Path:
        return _need(self._workdir, "workdir")

    @property
    def config_path(self) -> Path:
        return _need(self._config_path, "config file")

    @property
    def ca(self) -> LabCA:
        return _need(self._ca, "CA")

    @property
    def kube(self) -> KubeSimulator:
        return _need(self._kube, "Kubernetes simulator")

    @property
    def hostapp(self) -> HostAppSimulator:
        return _need(self._hostapp, "Host App simulator")

    @property
    def rethinkdb(self) -> RethinkDBSimulator:
        return _need(self._rethinkdb, "RethinkDB simulator")

    @property
    def tailscale(self) -> TailscaleSimulator:
        return _need(self._tailscale, "tailscaled simulator")

    @property
    def headscale(self) -> HeadscaleSimulator:
        return _need(self._headscale, "Headscale simulator")

    @property
    def hostapp_requests(self) -> list[RequestRecord]:
        """The Host App simulator's request log."""
        return self.hostapp.requests

    def __repr__(self) -> str:
        state = f"running in {self._workdir}" if self.running else "stopped"
        return f"<Lab {state}{', bare' if self.bare else ''}, faults={sorted(self.faults)}>"


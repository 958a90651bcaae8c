"""The cluster network as the store keeps it: ClusterIPs, node ports and pod IPs handed out,
MetalLB's LoadBalancer addresses, the Endpoints a Service has (its ready pods), and the lab's
wiring of Service ``default/rethinkdb`` to the RethinkDB simulator. A mixin of ``KubeState``."""

from __future__ import annotations

import copy
import threading

from mgn_verify.lab.kube.admission import pool_addresses
from mgn_verify.lab.kube.resources import Obj

__all__ = ["ServiceNetwork", "carry_allocations"]

Key = tuple[str, str]


class ServiceNetwork:
    _lock: threading.RLock
    _ip_counter: int
    _pod_ips: int
    _node_ports: int
    _rdb_target: tuple[str, int]

    def objects(self, key: Key) -> dict[Key, Obj]:
        raise NotImplementedError

    def touch(self, key: Key, obj: Obj) -> None:
        raise NotImplementedError

    def _reconcile(self) -> None:
        raise NotImplementedError

    def next_cluster_ip(self) -> str:
        with self._lock:
            self._ip_counter += 1
            return f"10.96.{self._ip_counter // 250}.{self._ip_counter % 250 + 1}"

    def next_pod_ip(self) -> str:
        with self._lock:
            self._pod_ips += 1
            # lab-worker's podCIDR (10.244.11.0/24), clear of the seeded pods' addresses
            return f"10.244.{11 + self._pod_ips // 250}.{self._pod_ips % 250 + 2}"

    def _next_node_port(self) -> int:
        self._node_ports += 1
        return 30000 + (self._node_ports * 7919) % 2768

    def _lb_ip(self, ns: str, name: str, obj: Obj) -> str | None:
        """MetalLB's choice: the first pool address no LoadBalancer Service holds."""
        if (obj.get("spec") or {}).get("type") != "LoadBalancer":
            return None
        if (ns, name) == ("default", "rethinkdb"):
            return self._rdb_target[0]
        used = {i.get("ip") for s in self.objects(("", "services")).values()
                for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []}
        pools = self.objects(("metallb.io", "ipaddresspools")).values()
        return next((ip for ip in pool_addresses(pools) if ip not in used), None)

    def _pin_rethinkdb(self, svc: Obj) -> None:
        """The lab's MetalLB hands Service ``default/rethinkdb`` the RethinkDB simulator's address."""
        host, port = self._rdb_target
        ports = (svc.get("spec") or {}).get("ports") or []
        if ports:
            ports[0].update(port=port, targetPort=port)
        if (svc.get("spec") or {}).get("type", "LoadBalancer") == "LoadBalancer":
            svc["status"] = {"loadBalancer": {"ingress": [{"ip": host, "ipMode": "VIP"}]}}

    def set_rethinkdb_endpoint(self, host: str, port: int) -> None:
        """Where the ``default/rethinkdb`` Service leads (now, if it exists, and once created)."""
        with self._lock:
            self._rdb_target = (host, port)
            svc = self.objects(("", "services")).get(("default", "rethinkdb"))
            if svc is not None:
                self._pin_rethinkdb(svc)
                self.touch(("", "services"), svc)

    def rethinkdb_endpoint(self) -> tuple[str, int] | None:
        with self._lock:
            svc = self.objects(("", "services")).get(("default", "rethinkdb"))
            if svc is None:
                return None
            ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
            host = ingress[0].get("ip") if ingress else svc["spec"].get("clusterIP")
            return (str(host), int(svc["spec"]["ports"][0]["port"]))

    def service_endpoints(self, namespace: str, name: str) -> list[Obj] | None:
        """The pods behind a Service as its Endpoints list them (ready, or any with an IP when
        ``publishNotReadyAddresses``); None when the Service has no selector (no Endpoints)."""
        with self._lock:
            self._reconcile()
            svc = self.objects(("", "services")).get((namespace, name))
            selector = ((svc or {}).get("spec") or {}).get("selector")
            if not selector:
                return None
            not_ready_too = bool(((svc or {}).get("spec") or {}).get("publishNotReadyAddresses"))
            out = []
            for (ns, _), pod in sorted(self.objects(("", "pods")).items()):
                labels = pod["metadata"].get("labels") or {}
                status = pod.get("status") or {}
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or [])
                if ns == namespace and all(labels.get(k) == v for k, v in selector.items()) \
                        and status.get("podIP") and (ready or not_ready_too):
                    out.append(copy.deepcopy(pod))
            return out


def carry_allocations(old: Obj, new: Obj) -> None:
    """An update that leaves out the allocated ClusterIP and node ports keeps them."""
    before, after = old.get("spec") or {}, new.setdefault("spec", {})
    for key in ("clusterIP", "clusterIPs"):
        if not after.get(key) and before.get(key):
            after[key] = copy.deepcopy(before[key])
    ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in before.get("ports") or []}
    for p in after.get("ports") or []:
        if not p.get("nodePort") and ports.get((p.get("port"), p.get("protocol", "TCP"))):
            p["nodePort"] = ports[(p.get("port"), p.get("protocol", "TCP"))]

"""Builders of the objects the simulated cluster holds (nodes, workloads, pods, services), as
plain JSON-ready dicts in the exact wire shape of kube-apiserver (protocols.md §2.4): every
field the 37.x client's strict models require (§2.3) is present, with the right JSON type (a
missing one makes the real client raise a ValidationError). Used by the seed, the controllers,
the GuildNet operator and the object faults."""

from __future__ import annotations

import hashlib

from mgn_verify.lab.kube.resources import Obj, fake_uid, meta

__all__ = ["daemonset", "deployment", "node", "not_ready", "pod", "service", "statefulset"]


def _cond(ctype: str, status: str, reason: str, message: str, when: str, *, heartbeat: bool = False) -> Obj:
    c: Obj = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
    }
    if heartbeat:
        c["lastHeartbeatTime"] = when
    else:
        c["lastUpdateTime"] = when
    return c


def node(name: str, ip: str, *, control_plane: bool, when: str) -> Obj:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    spec: Obj = {"podCIDR": f"10.244.{ip.rsplit('.', 1)[1]}.0/24"}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    resources = {
        "cpu": "4",
        "memory": "16374284Ki",
        "pods": "110",
        "ephemeral-storage": "102626232Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocatable = dict(resources, memory="16271884Ki", **{"ephemeral-storage": "94580335255"})
    conditions = [
        _cond("NetworkUnavailable", "False", "FlannelIsUp", "Flannel is running on this node", when, heartbeat=True),
        _cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            when,
            heartbeat=True,
        ),
        _cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            when,
            heartbeat=True,
        ),
        _cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            when,
            heartbeat=True,
        ),
        _cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", when, heartbeat=True),
    ]
    info = {
        "machineID": fake_uid("machine", name).replace("-", ""),
        "systemUUID": fake_uid("system", name),
        "bootID": fake_uid("boot", name),
        "kernelVersion": "6.1.0-18-amd64",
        "osImage": "Debian GNU/Linux 12 (bookworm)",
        "containerRuntimeVersion": "containerd://1.7.13",
        "kubeletVersion": "v1.30.2",
        "kubeProxyVersion": "v1.30.2",
        "operatingSystem": "linux",
        "architecture": "amd64",
    }
    return {
        "metadata": meta(name, labels=labels, created=when),
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": info,
        },
    }


def not_ready(node_obj: Obj, when: str) -> Obj:
    """The node as the kubelet reports it when the CNI is broken: Ready False."""
    status = node_obj["status"]
    conditions = [c for c in status["conditions"] if c["type"] != "Ready"]
    conditions.append(
        _cond(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            "message:Network plugin returns error: cni plugin not initialized",
            when,
            heartbeat=True,
        )
    )
    # The node lifecycle controller taints a NotReady node at once (TaintNodesByCondition).
    taints = [t for t in node_obj["spec"].get("taints") or [] if t["key"] != "node.kubernetes.io/not-ready"]
    taints += [{"key": "node.kubernetes.io/not-ready", "effect": effect, "timeAdded": when}
               for effect in ("NoSchedule", "NoExecute")]
    spec = {**node_obj["spec"], "taints": taints}
    return {**node_obj, "spec": spec, "status": {**status, "conditions": conditions}}


def _template(labels: dict[str, str], containers: list[tuple[str, str]]) -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": n, "image": i} for n, i in containers]},
    }


def _workload(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    when: str,
    spec: Obj,
    status: Obj,
    owner: Obj | None = None,
) -> Obj:
    """A Deployment/DaemonSet/StatefulSet at generation 1: ``spec`` gets selector and template."""
    m = meta(name, ns, labels, created=when)
    m["generation"] = 1
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {
        "metadata": m,
        "spec": {**spec, "selector": {"matchLabels": dict(labels)}, "template": _template(labels, containers)},
        "status": status,
    }


def deployment(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    replicas: int = 1,
    ready: int = 1,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    status: Obj = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas}
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    if replicas - ready:
        status["unavailableReplicas"] = replicas - ready
    avail = (
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        if ready
        else ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    )
    status["conditions"] = [
        _cond("Available", *avail, when),
        _cond(
            "Progressing",
            "True",
            *(("NewReplicaSetAvailable", f'ReplicaSet "{name}-5d8f7c9b6d" has successfully progressed.')
              if ready >= replicas else ("ReplicaSetUpdated", f'ReplicaSet "{name}-5d8f7c9b6d" is progressing.')),
            when,
        ),
    ]
    # The counters are omitted when zero (protocols.md §2.4), so drop zero values.
    status = {k: v for k, v in status.items() if v != 0}
    return _workload(name, ns, labels, containers, when, {"replicas": replicas}, status, owner)


def daemonset(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    desired: int,
    ready: int,
    when: str,
) -> Obj:
    status: Obj = {
        "currentNumberScheduled": desired,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": desired,
        "observedGeneration": 1,
    }
    return _workload(name, ns, labels, containers, when, {}, status)


def statefulset(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    replicas: int,
    ready: int,
    when: str,
) -> Obj:
    status: Obj = {
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": ready,
        "observedGeneration": 1,
    }
    return _workload(name, ns, labels, containers, when, {"replicas": replicas, "serviceName": name}, status)


def pod(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    node_name: str,
    pod_ip: str,
    host_ip: str,
    running: bool,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    statuses = []
    for cname, image in containers:
        cs: Obj = {
            "name": cname,
            "image": image,
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
        }
        if running:
            cs["imageID"] = f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
            cs["containerID"] = f"containerd://{hashlib.sha256((name + cname).encode()).hexdigest()}"
            cs["state"] = {"running": {"startedAt": when}}
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        cs["lastState"] = {}
        statuses.append(cs)
    flag = "True" if running else "False"
    conds = [
        {"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": when}
        for t, s in (
            ("PodReadyToStartContainers", flag),
            ("Initialized", "True"),
            ("Ready", flag),
            ("ContainersReady", flag),
            ("PodScheduled", "True"),
        )
    ]
    status: Obj = {
        "phase": "Running" if running else "Pending",
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": when,
        "qosClass": "BestEffort",
        "containerStatuses": statuses,
    }
    if running:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    m = meta(name, ns, labels, created=when)
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {
        "metadata": m,
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": n, "image": i} for n, i in containers],
            "restartPolicy": "Always",
            "serviceAccountName": "default",
        },
        "status": status,
    }


def service(
    name: str,
    ns: str,
    cluster_ip: str,
    ports: list[tuple[str | None, int]],
    *,
    labels: dict[str, str],
    selector: dict[str, str] | None,
    lb_ip: str | None = None,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    port_objs: list[Obj] = []
    for pname, port in ports:
        p: Obj = {"port": port, "targetPort": port, "protocol": "TCP"}
        if pname:
            p["name"] = pname
        if lb_ip is not None:
            p["nodePort"] = 30000 + port % 2768
        port_objs.append(p)
    spec: Obj = {
        "type": "LoadBalancer" if lb_ip is not None else "ClusterIP",
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ports": port_objs,
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
    }
    if selector:
        spec["selector"] = dict(selector)
    status: Obj = {"loadBalancer": {"ingress": [{"ip": lb_ip, "ipMode": "VIP"}]} if lb_ip else {}}
    m = meta(name, ns, labels, created=when)
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {"metadata": m, "spec": spec, "status": status}

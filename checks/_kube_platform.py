"""What GuildNet runs on: CoreDNS, kube-proxy/CNI, a default StorageClass, a load-balancer
provider, the GuildNet CRDs and the workspace operator."""

from __future__ import annotations

from typing import Any

from mgn_verify import Config, check, skip, warn
from mgn_verify._exceptions import ApiError

from ._kube_common import KubePool, condition, list_json, names, read_json

__all__ = ["daemonset_problem", "deployment_problem"]

_READ = "kubernetes.rbac.read[{cluster}]"
_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")
_CLOUD = ("aws://", "gce://", "azure://", "openstack://", "digitalocean://", "hcloud://", "linode://")


def deployment_problem(dep: dict[str, Any]) -> str | None:
    """``ns/name: 0/1 ready (MinimumReplicasUnavailable: …)`` or None when rolled out and ready."""
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1) or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if want == 0:
        return f"{meta.get('namespace')}/{meta.get('name')}: scaled to 0 replicas"
    if ready >= want and available >= want:
        return None
    cond = condition(dep, "Available")
    why = f" ({cond.get('reason')}: {cond.get('message')})" if cond.get("status") == "False" else ""
    return f"{meta.get('namespace')}/{meta.get('name')}: {ready}/{want} ready{why}"


def daemonset_problem(ds: dict[str, Any]) -> str | None:
    meta, status = ds.get("metadata") or {}, ds.get("status") or {}
    desired, ready = int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
    # 0/0: no node matches its selector (a Windows variant on a Linux cluster): nothing to wait for.
    if ready >= desired:
        return None
    return f"{meta.get('namespace')}/{meta.get('name')}: {ready}/{desired} pods ready"


@check(
    id="kubernetes.dns",
    gates=["install"],
    title="CoreDNS is ready",
    severity="critical",
    requires=_READ,
    remediation="kubectl -n kube-system get deploy,pods -l k8s-app=kube-dns; kubectl -n kube-system logs "
    "-l k8s-app=kube-dns; (re)install CoreDNS with your distribution (kubeadm init phase addon coredns)",
)
def check_dns(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """The cluster DNS Deployment(s) (``kubernetes.dns_selector`` in kube-system) are ready and
    the kube-dns Service exists."""
    conn = kube_clusters.get(cluster)
    selector = str(config["kubernetes.dns_selector"])
    deps = list_json(conn, "AppsV1Api", "list_namespaced_deployment", "kube-system", label_selector=selector)
    assert deps, f"no DNS Deployment labelled {selector} in kube-system"
    problems = [p for d in deps if (p := deployment_problem(d))]
    assert not problems, "; ".join(problems)
    services = list_json(conn, "CoreV1Api", "list_namespaced_service", "kube-system", label_selector=selector)
    assert services, f"no DNS Service labelled {selector} in kube-system: pods cannot resolve names"
    ip = (services[0].get("spec") or {}).get("clusterIP")
    return {"message": f"{', '.join(names(deps, namespaced=True))} ready; Service {names(services)[0]} at {ip}"}


@check(
    id="kubernetes.network",
    gates=["install"],
    title="kube-proxy and CNI DaemonSets are ready",
    severity="critical",
    requires=_READ,
    remediation="kubectl get ds -A; kubectl -n <ns> describe ds <name> and its pods; reinstall the CNI "
    "(e.g. kubectl apply -f kube-flannel.yml) if its pods do not start",
)
def check_network(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Every DaemonSet named in ``kubernetes.network_daemonsets`` (kube-proxy, flannel, calico,
    cilium …) that exists, in any namespace, has all its pods ready."""
    known = [str(n) for n in config["kubernetes.network_daemonsets"]]
    if not known:
        skip("kubernetes.network_daemonsets is empty: nothing configured")
    every = list_json(kube_clusters.get(cluster), "AppsV1Api", "list_daemon_set_for_all_namespaces")
    found = [d for d in every if any(_named(str(d["metadata"]["name"]), k) for k in known)]
    if not found:
        warn("no kube-proxy or known CNI DaemonSet found (built into the distribution, as in k3s? "
             f"looked for: {', '.join(known)})")
    problems = [p for d in found if (p := daemonset_problem(d))]
    assert not problems, "; ".join(problems)
    return {"message": f"ready: {', '.join(names(found, namespaced=True))}"}


def _named(name: str, known: str) -> bool:
    """``calico-node`` matches ``calico-node`` and ``calico-node-windows``, not ``calico-nodes``."""
    return name == known or name.startswith(known + "-")


def _is_default(sc: dict[str, Any]) -> bool:
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return any(annotations.get(key) == "true" for key in _DEFAULT_CLASS)


@check(
    id="kubernetes.storage.default_class",
    gates=["install"],
    title="A default StorageClass exists",
    severity="critical",
    requires=_READ,
    remediation="kubectl patch storageclass <name> -p "
    "'{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}' "
    "(install one first, e.g. local-path-provisioner, if none exists)",
)
def check_default_storage_class(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """Exactly one StorageClass is annotated default (RethinkDB's volumes claim without a class)."""
    classes = list_json(kube_clusters.get(cluster), "StorageV1Api", "list_storage_class")
    defaults = [sc for sc in classes if _is_default(sc)]
    listed = ", ".join(names(classes)) or "none"
    assert defaults, f"no default StorageClass (classes: {listed}): claims without storageClassName stay Pending"
    if len(defaults) > 1:
        warn(f"{len(defaults)} default StorageClasses ({', '.join(names(defaults))}): the newest wins")
    sc = defaults[0]
    return {"message": f"default StorageClass {names(defaults)[0]} ({sc.get('provisioner')})"}


def _metallb_pools(conn: Any) -> list[dict[str, Any]] | None:
    """The IPAddressPools, or None when MetalLB's CRD is not installed."""
    try:
        return list_json(conn, "CustomObjectsApi", "list_cluster_custom_object", "metallb.io", "v1beta1",
                         "ipaddresspools")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


@check(
    id="kubernetes.loadbalancer",
    title="A load-balancer provider is present",
    severity="critical",
    requires=_READ,
    remediation="install MetalLB and give it an address range: kubectl apply -f an IPAddressPool and an "
    "L2Advertisement in metallb-system (https://metallb.io/configuration/); or run on a cloud with a "
    "load-balancer controller",
)
def check_loadbalancer(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """MetalLB with at least one IPAddressPool, else a LoadBalancer Service that got an address,
    else nodes of a cloud provider (providerID)."""
    conn = kube_clusters.get(cluster)
    pools = _metallb_pools(conn)
    if pools:
        ranges = [f"{names([p])[0]} ({', '.join((p.get('spec') or {}).get('addresses') or [])})" for p in pools]
        return {"message": f"MetalLB pools: {'; '.join(ranges)}", "provider": "metallb"}
    services = list_json(conn, "CoreV1Api", "list_service_for_all_namespaces")
    served = [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"
              and ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress")]
    if served:
        return {"message": f"LoadBalancer Services get addresses ({', '.join(names(served, namespaced=True))})",
                "provider": "other"}
    nodes = list_json(conn, "CoreV1Api", "list_node")
    cloud = {str((n.get("spec") or {}).get("providerID") or "").split("://")[0] for n in nodes
             if str((n.get("spec") or {}).get("providerID") or "").startswith(_CLOUD)}
    if cloud:
        return {"message": f"cloud provider {', '.join(sorted(cloud))} provides load balancers", "provider": "cloud"}
    metallb = "MetalLB is installed but has no IPAddressPool" if pools is not None else "MetalLB is not installed"
    raise AssertionError(f"no load-balancer provider: {metallb}, no LoadBalancer Service has an address, "
                         "and no node has a cloud providerID")


def _crd_problem(crd: dict[str, Any], version: str) -> str | None:
    name = names([crd])[0]
    established = condition(crd, "Established")
    if established.get("status") != "True":
        return f"{name} is not Established ({established.get('reason') or 'no condition'})"
    served = [str(v.get("name")) for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
    if version not in served:
        return f"{name} serves {', '.join(served) or 'no version'}, not {version}"
    return None


@check(
    id="kubernetes.crds",
    gates=["workspace.create", "federation.deploy"],
    title="GuildNet CRDs are Established",
    severity="critical",
    requires=_READ,
    remediation="install GuildNet's CRDs: kubectl apply -f config/crd/ (from the GuildNet repository), then "
    "kubectl wait --for condition=established crd/workspaces.guildnet.io",
)
def check_crds(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Each of ``kubernetes.crds`` exists, is Established and serves ``kubernetes.crd_version``."""
    conn = kube_clusters.get(cluster)
    version = str(config["kubernetes.crd_version"])
    wanted = [str(n) for n in config["kubernetes.crds"]]
    if not wanted:
        skip("kubernetes.crds is empty: nothing configured")
    problems = []
    for name in wanted:
        try:
            crd = read_json(conn, "ApiextensionsV1Api", "read_custom_resource_definition", name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            problems.append(f"{name} is not installed")
            continue
        if (problem := _crd_problem(crd, version)) is not None:
            problems.append(problem)
    assert not problems, "; ".join(problems)
    return {"message": f"Established and serving {version}: {', '.join(wanted)}"}


def _pod_states(conn: Any, namespace: str, dep: dict[str, Any]) -> str:
    """Why the Deployment's pods are not ready (its selector's pods, each with its state)."""
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    pods = list_json(conn, "CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector)
    states = []
    for pod in pods:
        ready = condition(pod, "Ready")
        phase = (pod.get("status") or {}).get("phase")
        states.append(f"pod {names([pod])[0]} {phase}, Ready={ready.get('status', '?')}")
    return "; ".join(states) or f"no pod matches {selector}"


@check(
    id="kubernetes.operator",
    gates=["workspace.create", "federation.deploy"],
    title="GuildNet workspace operator is ready",
    severity="critical",
    requires=_READ,
    remediation="kubectl -n guildnet-system describe deploy workspace-operator; kubectl -n guildnet-system "
    "logs deploy/workspace-operator; redeploy it with GuildNet's scripts/deploy-operator.sh",
)
def check_operator(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Deployment ``kubernetes.operator_deployment`` in ``kubernetes.operator_namespace`` has all
    its replicas ready (no operator: Workspaces never get a pod)."""
    conn = kube_clusters.get(cluster)
    namespace, name = str(config["kubernetes.operator_namespace"]), str(config["kubernetes.operator_deployment"])
    try:
        dep = read_json(conn, "AppsV1Api", "read_namespaced_deployment", name, namespace)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise AssertionError(f"Deployment {namespace}/{name} does not exist: the operator is not installed") from None
    problem = deployment_problem(dep)
    if problem is not None:
        raise AssertionError(f"{problem}; {_pod_states(conn, namespace, dep)}")
    image = (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers", [{}])[0].get("image")
    return {"message": f"{namespace}/{name} ready ({(dep.get('status') or {}).get('readyReplicas')} replica(s), "
                       f"image {image})"}

"""Pods and events of the platform namespaces (``kubernetes.platform_namespaces``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from mgn_verify import Config, check, warn

from ._kube_common import KubePool, condition, in_parallel, list_json

__all__ = ["pod_problem"]

_READ = "kubernetes.rbac.read[{cluster}]"
#: Waiting reasons that mean the container will not start by itself.
_STUCK = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                    "CreateContainerError", "InvalidImageName", "RunContainerError"})


def _when(text: object) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_problem(pod: dict[str, Any], now: _dt.datetime, pending_grace: float) -> str | None:
    """``ns/name: container c CrashLoopBackOff (7 restarts)`` or ``Pending for 12 min (…)``."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _STUCK:
            restarts = int(cs.get("restartCount") or 0)
            last = ((cs.get("lastState") or {}).get("terminated") or {})
            exit_info = f", last exit {last.get('exitCode')} {last.get('reason') or ''}".rstrip() if last else ""
            return f"{name}: container {cs.get('name')} {waiting['reason']} ({restarts} restarts{exit_info})"
    if status.get("phase") == "Pending":
        created = _when(meta.get("creationTimestamp"))
        age = (now - created).total_seconds() if created else 0.0
        if age > pending_grace:
            scheduled = condition(pod, "PodScheduled")
            unscheduled = scheduled.get("status") == "False"
            why = f" ({scheduled.get('reason')}: {scheduled.get('message')})" if unscheduled else ""
            return f"{name}: Pending for {age / 60:.0f} min{why}"
    if status.get("phase") == "Failed":
        return f"{name}: Failed ({status.get('reason') or 'see kubectl describe pod'})"
    return None


@check(
    id="kubernetes.pods.platform",
    title="Platform pods are not crash-looping or stuck",
    severity="critical",
    requires=_READ,
    remediation="kubectl -n <ns> describe pod <pod>; kubectl -n <ns> logs <pod> --previous for a crash loop; "
    "fix the image or pull secret for ImagePullBackOff; kubectl describe shows why a Pending pod is unscheduled",
)
def check_platform_pods(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """No pod in ``kubernetes.platform_namespaces`` is crash-looping, failing to pull or start,
    Failed, or Pending longer than ``kubernetes.pending_grace_s``."""
    conn = kube_clusters.get(cluster)
    namespaces = [str(ns) for ns in config["kubernetes.platform_namespaces"]]
    grace = float(config["kubernetes.pending_grace_s"])
    # Completed pods (Jobs) are Succeeded: the server leaves them out.
    pages = in_parallel([lambda ns=ns: list_json(conn, "CoreV1Api", "list_namespaced_pod", ns,  # type: ignore[misc]
                                                 field_selector="status.phase!=Succeeded") for ns in namespaces])
    pods = [pod for page in pages for pod in page]
    now = _dt.datetime.now(_dt.UTC)
    problems = [p for pod in pods if (p := pod_problem(pod, now, grace))]
    assert not problems, "; ".join(problems)
    return {"message": f"{len(pods)} pod(s) healthy in {', '.join(namespaces)}", "pods": len(pods)}


def _last_seen(event: dict[str, Any]) -> _dt.datetime | None:
    series = event.get("series") or {}
    for key in (series.get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime"),
                (event.get("metadata") or {}).get("creationTimestamp")):
        if key and (when := _when(key)) is not None:
            return when
    return None


@check(
    id="kubernetes.events.warnings",
    title="No recent Warning events",
    severity="info",
    requires=_READ,
    remediation="kubectl get events -A --field-selector type=Warning --sort-by=.lastTimestamp; each reason "
    "(BackOff, FailedScheduling, FailedMount, Unhealthy) points at the object to describe",
)
def check_warning_events(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Warning events (``fieldSelector=type=Warning``) in the platform namespaces within the last
    ``kubernetes.events_window_s`` seconds, grouped by object and reason."""
    conn = kube_clusters.get(cluster)
    namespaces = [str(ns) for ns in config["kubernetes.platform_namespaces"]]
    window = float(config["kubernetes.events_window_s"])
    pages = in_parallel([lambda ns=ns: list_json(conn, "CoreV1Api", "list_namespaced_event", ns,  # type: ignore[misc]
                                                 field_selector="type=Warning") for ns in namespaces])
    now = _dt.datetime.now(_dt.UTC)
    seen: dict[str, int] = {}
    for event in (e for page in pages for e in page):
        when = _last_seen(event)
        if when is not None and (now - when).total_seconds() > window:
            continue
        obj = event.get("involvedObject") or {}
        key = f"{obj.get('kind')} {obj.get('namespace')}/{obj.get('name')}: {event.get('reason')} " \
              f"\"{str(event.get('message') or '')[:120]}\""
        seen[key] = seen.get(key, 0) + int(event.get("count") or (event.get("series") or {}).get("count") or 1)
    if seen:
        shown = [f"{key} (x{count})" for key, count in sorted(seen.items())[:10]]
        more = f" and {len(seen) - 10} more" if len(seen) > 10 else ""
        warn(f"{len(seen)} Warning event group(s) in the last {window / 60:.0f} min: {'; '.join(shown)}{more}")
    return {"message": f"no Warning events in the last {window / 60:.0f} min in {', '.join(namespaces)}"}

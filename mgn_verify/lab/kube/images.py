"""Image pulls as the lab's kubelet (v1.30, containerd 1.7) sees them.

``pull_failure(image, registry_down)`` says why an image cannot be pulled: a reference that does
not parse (kubelet: ``InvalidImageName``), a registry under the reserved TLD ``.invalid``
(RFC 6761: never resolves), or any image while the node cannot reach a registry (the
``kubernetes.image_pull_failing`` fault). ``failing_pod`` shapes the pod the way the kubelet
reports it (phase Pending, not Ready, the container waiting with the kubelet's reason and
message) and ``pull_events`` are the events it records meanwhile (``Failed`` Warnings; the
``Pulling`` and ``BackOff`` ones are Normal in kubelet's image manager).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Final, Literal

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.resources import Obj

__all__ = ["ERR_IMAGE_PULL", "IMAGE_PULL_BACKOFF", "INVALID_IMAGE_NAME", "PullFailure", "failing_pod",
           "log_refusal", "normalized", "pull_events", "pull_failure"]

Stage = Literal["ErrImagePull", "ImagePullBackOff", "InvalidImageName"]
ERR_IMAGE_PULL: Final = "ErrImagePull"
IMAGE_PULL_BACKOFF: Final = "ImagePullBackOff"
INVALID_IMAGE_NAME: Final = "InvalidImageName"

# github.com/distribution/reference's grammar (what kubelet's ParseNormalizedNamed accepts).
_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_COMPONENT}(?:\.{_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_DOCKER_HUB, _DOCKER_HUB_API = "docker.io", "registry-1.docker.io"
_RESOLVER = "10.0.0.1:53"  # the node's DNS server


@dataclass(frozen=True)
class PullFailure:
    """Why ``image`` cannot be pulled: ``reason`` is the kubelet's first waiting reason."""

    image: str
    reason: Stage
    error: str  # the runtime's (or the reference parser's) error text

    def waiting(self, stage: Stage) -> Obj:
        """The container's ``state.waiting`` at ``stage`` (ErrImagePull, then ImagePullBackOff)."""
        if self.reason == INVALID_IMAGE_NAME:
            return {"reason": INVALID_IMAGE_NAME, "message": self.error}
        if stage == IMAGE_PULL_BACKOFF:
            return {"reason": IMAGE_PULL_BACKOFF, "message": f'Back-off pulling image "{self.image}"'}
        return {"reason": ERR_IMAGE_PULL, "message": self.error}


def _split_domain(name: str) -> tuple[str, str]:
    """(domain, remainder) as ``splitDockerDomain`` does: Docker Hub unless the first part looks like a host."""
    first, slash, rest = name.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = _DOCKER_HUB, name
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = _DOCKER_HUB
    if domain == _DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


def parse_error(image: str) -> str | None:
    """Why ``ParseNormalizedNamed`` rejects ``image`` (None: it parses)."""
    if not image:
        return "repository name must have at least one component"
    if _HEX64.fullmatch(image):
        return f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = _split_domain(image)
    remote = remainder.partition("@")[0].partition(":")[0]
    if remote.lower() != remote:
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        return "invalid reference format"
    if len(match["name"]) > 255:
        return "repository name must not be more than 255 characters"
    return None


def normalized(image: str) -> tuple[str, str, str]:
    """(containerd's full reference, registry host, manifest URL path) of a parsed ``image``."""
    domain, remainder = _split_domain(image)
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    assert match is not None, image
    repo = match["name"].partition("/")[2]
    tag, digest = match["tag"], match["digest"]
    if not tag and not digest:
        tag = "latest"
    full = match["name"] + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    host = _DOCKER_HUB_API if domain == _DOCKER_HUB else domain
    return full, host, f"/v2/{repo}/manifests/{digest or tag}"


def pull_failure(image: str, *, registry_down: bool = False) -> PullFailure | None:
    """Why the kubelet cannot pull ``image`` now; None when the pull succeeds."""
    invalid = parse_error(image)
    if invalid is not None:
        return PullFailure(image, INVALID_IMAGE_NAME, f'Failed to apply default image tag "{image}": couldn\'t '
                                                      f'parse image reference "{image}": {invalid}')
    full, host, path = normalized(image)
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not (registry_down or hostname.lower().rstrip(".").endswith(".invalid")):
        return None
    return PullFailure(image, ERR_IMAGE_PULL,
                       f'failed to pull and unpack image "{full}": failed to resolve reference "{full}": failed to do '
                       f'request: Head "https://{host}{path}": dial tcp: lookup {hostname} on {_RESOLVER}: '
                       "no such host")


def failing_pod(pod: Obj, failure: PullFailure, stage: Stage, pod_ip: str) -> Obj:
    """``pod`` (as built Pending) whose sandbox runs but whose container cannot start."""
    pod = copy.deepcopy(pod)
    status = pod["status"]
    names = [c["name"] for c in status["containerStatuses"]]
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady",
                        message=f"containers with unready status: [{' '.join(names)}]")
        elif cond["type"] == "PodReadyToStartContainers":
            cond["status"] = "True"  # the sandbox (and its IP) exists
    for cs in status["containerStatuses"]:
        if cs["image"] == failure.image:
            cs["state"] = {"waiting": failure.waiting(stage)}
    status.update(phase="Pending", podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    return pod


def _event(pod: Obj, container: str, reason: str, message: str, etype: str, when: str) -> Obj:
    meta, host = pod["metadata"], pod["spec"]["nodeName"]
    name = f"{meta['name']}.{kr.fake_uid(reason, message, meta['uid']).replace('-', '')[:16]}"
    return {
        "metadata": kr.meta(name, meta["namespace"], created=when),
        "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                           "apiVersion": "v1", "fieldPath": f"spec.containers{{{container}}}"},
        "reason": reason, "message": message, "type": etype, "count": 1,
        "source": {"component": "kubelet", "host": host}, "firstTimestamp": when, "lastTimestamp": when,
        "reportingComponent": "kubelet", "reportingInstance": host,
    }


def pull_events(pod: Obj, container: str, failure: PullFailure, stage: Stage, when: str) -> list[Obj]:
    """The events kubelet records on ``pod`` when it reaches ``stage`` for ``container``."""
    image = failure.image
    if failure.reason == INVALID_IMAGE_NAME:
        return [_event(pod, container, "InspectFailed", failure.error, "Warning", when),
                _event(pod, container, "Failed", f"Error: {INVALID_IMAGE_NAME}", "Warning", when)]
    if stage == ERR_IMAGE_PULL:
        return [_event(pod, container, "Pulling", f'Pulling image "{image}"', "Normal", when),
                _event(pod, container, "Failed", f'Failed to pull image "{image}": {failure.error}', "Warning", when),
                _event(pod, container, "Failed", f"Error: {ERR_IMAGE_PULL}", "Warning", when)]
    return [_event(pod, container, "BackOff", f'Back-off pulling image "{image}"', "Normal", when),
            _event(pod, container, "Failed", f"Error: {IMAGE_PULL_BACKOFF}", "Warning", when)]


def log_refusal(pod: Obj) -> str | None:
    """The kubelet's 400 for ``pods/log`` of a pod whose container waits on its image (None: not such a pod)."""
    why = {ERR_IMAGE_PULL: "image can't be pulled", IMAGE_PULL_BACKOFF: "trying and failing to pull image",
           INVALID_IMAGE_NAME: INVALID_IMAGE_NAME}
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in why:
            return (f'container "{cs["name"]}" in pod "{pod["metadata"]["name"]}" is waiting to start: '
                    f"{why[reason]}")
    return None

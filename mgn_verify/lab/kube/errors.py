"""The two ways a simulated API call fails: an API error (a ``Status`` object with an HTTP code)
and no HTTP answer at all. Their own module: the store, selectors, watches and the Host App all
raise or catch them, and none of those should import another just for the exception."""

from __future__ import annotations

from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["KubeApiError", "KubeConnectionError"]


class KubeApiError(Exception):
    """An API error as kube-apiserver reports it: a ``Status`` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    @classmethod
    def not_found(cls, rtype: ResourceType, name: str) -> KubeApiError:
        details: Obj = {"name": name, "kind": rtype.plural}
        if rtype.group:
            details["group"] = rtype.group
        return cls(404, "NotFound", f'{rtype.qualified} "{name}" not found', details)


class KubeConnectionError(Exception):
    """What a client sees when no HTTP answer comes back (refused, TLS failure, timeout)."""

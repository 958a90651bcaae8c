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


    @classmethod
    def invalid(cls, kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> KubeApiError:
        """``errors.NewInvalid``: ``causes`` are (field, reason, message) with messages formatted
        as field.Error does (``Required value``, ``Invalid value: "x": why``)."""
        texts = [f"{field}: {message}" for field, _, message in causes]
        qualified = f"{kind}.{group}" if group else kind
        text = f'{qualified} "{name}" is invalid'
        if len(texts) == 1:
            text += f": {texts[0]}"
        elif texts:
            text += f": [{', '.join(texts)}]"
        details: Obj = {"name": name, "group": group, "kind": kind,
                        "causes": [{"reason": reason, "message": message, "field": field}
                                   for field, reason, message in causes]}
        if not group:
            details.pop("group")
        return cls(422, "Invalid", text, details)

    @classmethod
    def already_exists(cls, rtype: ResourceType, name: str) -> KubeApiError:
        details: Obj = {"name": name, "kind": rtype.plural}
        if rtype.group:
            details["group"] = rtype.group
        return cls(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', details)

    @classmethod
    def not_served(cls) -> KubeApiError:
        """The answer for a path no installed API serves (a CRD that does not exist)."""
        return cls(404, "NotFound", "the server could not find the requested resource")


class KubeConnectionError(Exception):
    """What a client sees when no HTTP answer comes back (refused, TLS failure, timeout)."""

"""CustomResourceDefinitions as kube-apiserver's apiextensions server treats them.

A created CRD is validated (``metadata.name`` must be ``<plural>.<group>``, names, scope, exactly
one storage version), gets the status the naming and establishing controllers write at once
(``acceptedNames``, ``storedVersions``, ``NamesAccepted`` and ``Established`` True) and from
then on its group/version serves the resource (:func:`type_from_crd`); deleting it stops that.
"""

from __future__ import annotations

from typing import Any

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["crd", "crd_version", "establish", "type_from_crd", "validate_crd"]

_KIND, _GROUP = "CustomResourceDefinition", "apiextensions.k8s.io"


def _names(crd: Obj) -> Obj:
    names = (crd.get("spec") or {}).get("names")
    return names if isinstance(names, dict) else {}


def crd_version(crd: Obj) -> str | None:
    """The served version a client reaches: the storage one if served, else the first served."""
    versions = [v for v in (crd.get("spec") or {}).get("versions") or [] if isinstance(v, dict) and v.get("served")]
    storage = [v for v in versions if v.get("storage")]
    chosen = storage or versions
    return str(chosen[0]["name"]) if chosen else None


def type_from_crd(crd: Obj) -> ResourceType | None:
    """The resource a CRD serves, or None when it serves no version."""
    spec, names = crd.get("spec") or {}, _names(crd)
    version = crd_version(crd)
    if version is None:
        return None
    kind = str(names.get("kind") or "")
    return ResourceType(
        str(spec.get("group") or ""), version, str(names.get("plural") or ""),
        str(names.get("singular") or kind.lower()), kind, spec.get("scope") == "Namespaced",
        short_names=tuple(str(s) for s in names.get("shortNames") or ()), custom=True,
        status_subresource=_declares_status(spec, version))


def _declares_status(spec: Obj, version: str) -> bool:
    """The served version has ``subresources: {status: {}}``."""
    for v in spec.get("versions") or []:
        if isinstance(v, dict) and v.get("name") == version:
            subresources = v.get("subresources")
            return isinstance(subresources, dict) and "status" in subresources
    return False


def _required(causes: list[tuple[str, str, str]], value: Any, field: str) -> None:
    if not value:
        causes.append((field, "FieldValueRequired", "Required value"))


def validate_crd(name: str, crd: Obj) -> None:
    """Raise 422 Invalid as apiextensions' validation does for the mistakes an install makes."""
    spec: Obj = crd["spec"] if isinstance(crd.get("spec"), dict) else {}
    names = _names(crd)
    causes: list[tuple[str, str, str]] = []
    group, plural = spec.get("group"), names.get("plural")
    if plural and group and name != f"{plural}.{group}":
        causes.append(("metadata.name", "FieldValueInvalid",
                       f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    _required(causes, group, "spec.group")
    _required(causes, plural, "spec.names.plural")
    _required(causes, names.get("kind"), "spec.names.kind")
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", "FieldValueNotSupported",
                       f'Unsupported value: "{scope or ""}": supported values: "Cluster", "Namespaced"'))
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    if not versions:
        causes.append(("spec.versions", "FieldValueInvalid", "Invalid value: \"null\": must have exactly one "
                                                               "version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(("spec.versions", "FieldValueInvalid",
                       "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one "
                       "version marked as storage version"))
    if causes:
        raise KubeApiError.invalid(_KIND, _GROUP, name, causes)


def establish(crd: Obj, when: str | None = None) -> None:
    """The status the naming and establishing controllers write (in place)."""
    old = {c.get("type"): c.get("lastTransitionTime") for c in (crd.get("status") or {}).get("conditions") or []}
    when = old.get("Established") or when or kr.isotime()
    names = {k: v for k, v in _names(crd).items()}
    names.setdefault("singular", str(names.get("kind") or "").lower())
    names.setdefault("listKind", f"{names.get('kind')}List")
    storage = [str(v["name"]) for v in (crd.get("spec") or {}).get("versions") or []
               if isinstance(v, dict) and v.get("storage")]
    crd["status"] = {
        "acceptedNames": names,
        "storedVersions": storage,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
             "lastTransitionTime": when},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": when},
        ],
    }


_WORKSPACE_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string"},
                "env": {"type": "array", "items": {"type": "object"}},
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["containerPort"],
                        "properties": {
                            "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "name": {"type": "string"},
                            "protocol": {"type": "string"},
                        },
                    },
                },
                "exposure": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["ClusterIP", "LoadBalancer", "Ingress"]},
                        "domain": {"type": "string"},
                        "ingressClass": {"type": "string"},
                        "tlsIssuer": {"type": "string"},
                    },
                },
                "presetsRef": {"type": "string"},
                "notes": {"type": "string"},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Pending", "Running", "Failed", "Terminating"]},
                "readyReplicas": {"type": "integer"},
                "serviceDNS": {"type": "string"},
                "serviceIP": {"type": "string"},
                "externalURL": {"type": "string"},
                "proxyTarget": {"type": "string"},
                "lastError": {"type": "string"},
            },
        },
    },
}


def crd(rtype: ResourceType, when: str) -> Obj:
    version: Obj = {
        "name": rtype.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if rtype.plural == "workspaces":
        version["schema"] = {"openAPIV3Schema": _WORKSPACE_SCHEMA}
        version["subresources"] = {"status": {}}
        version["additionalPrinterColumns"] = [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        ]
    names: Obj = {
        "plural": rtype.plural,
        "singular": rtype.singular,
        "kind": rtype.kind,
        "listKind": f"{rtype.kind}List",
    }
    if rtype.short_names:
        names["shortNames"] = list(rtype.short_names)
    name = f"{rtype.plural}.{rtype.group}"
    m = kr.meta(name, created=when)
    m["generation"] = 1
    return {
        "metadata": m,
        "spec": {
            "group": rtype.group,
            "scope": "Namespaced" if rtype.namespaced else "Cluster",
            "names": names,
            "versions": [version],
        },
        "status": {
            "acceptedNames": names,
            "storedVersions": [rtype.version],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": when,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": when,
                },
            ],
        },
    }

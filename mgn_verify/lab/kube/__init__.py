"""The Kubernetes API server simulator (``KubeSimulator``) and its parts: ``resources`` (the
resource types and object builders), ``store`` (the thread-safe object store), ``seed`` (the
cluster a fresh store starts with), ``select`` (label/field selectors, pagination), ``watch``,
``endpoints`` (health and discovery), ``faults`` (object faults) and ``errors``."""

from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError
from mgn_verify.lab.kube.simulator import KubeSimulator
from mgn_verify.lab.kube.store import AccessRule, KubeState

__all__ = ["AccessRule", "KubeApiError", "KubeConnectionError", "KubeSimulator", "KubeState"]

"""The kubernetes backend: a stack as Deployments and Services in a namespace per run, on a local cluster.

Modules: :mod:`.cluster` (kubeconfig checks, ``kubectl``), :mod:`.manifests` (compose + x-drill ->
objects), :mod:`.control` (the backend: lifecycle, faults, health), :mod:`.exec` (operator CLI, runbook
shell), :mod:`.logs`, :mod:`.forward` (the port-forward keeper process), :mod:`.reaper` (dead runs).
Set-up and addresses: ``scripts/k8s-setup.sh`` and docs/kubernetes.md.
"""

from __future__ import annotations

from harness.backends.kubernetes.cluster import Kubectl, kubeconfig_path
from harness.backends.kubernetes.control import KubernetesBackend
from harness.backends.kubernetes.reaper import reap_dead_runs
from harness.errors import DrillError


def cluster_available() -> tuple[bool, str]:
    """(True, server) when a safe kubeconfig exists and its API server answers; else (False, why)."""
    try:
        kubectl = Kubectl()
        kubectl.ping(timeout=5.0)
    except DrillError as exc:
        return False, str(exc)
    return True, kubectl.server


__all__ = ["KubernetesBackend", "Kubectl", "cluster_available", "kubeconfig_path", "reap_dead_runs"]

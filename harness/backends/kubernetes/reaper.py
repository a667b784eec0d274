"""Dead runs: delete the namespace (and stop the port-forward keeper) of every drill run whose process is gone,
after rolling back its faults that outlive the namespace (a lost node is brought back).

A namespace is a drill run's when it carries the ``drill.run-id`` label; its ``drill/run-dir`` annotation
leads to ``stack.json``. The run is dead when that file is missing, says ``down``, or names an owner
process that no longer exists. Detached stacks (``drill stack up``) are never touched.
"""

from __future__ import annotations

from harness.backends.container_base import dead_run_state, mark_reaped
from harness.backends.kubernetes.cluster import Kubectl
from harness.backends.kubernetes.control import delete_namespace, stop_keeper
from harness.backends.kubernetes.manifests import ANNOTATION_RUN_DIR, LABEL_RUN_ID


def drill_namespaces(kubectl: Kubectl) -> dict[str, str]:
    """Namespace -> run directory, for every namespace labelled as a drill run's."""
    items = kubectl.json("get", "namespaces", "-l", LABEL_RUN_ID)["items"]
    return {
        str(ns["metadata"]["name"]): str((ns["metadata"].get("annotations") or {}).get(ANNOTATION_RUN_DIR, ""))
        for ns in items
        if ns.get("status", {}).get("phase") != "Terminating"
    }


def reap_dead_runs(kubectl: Kubectl | None = None) -> list[str]:
    """Delete what dead runs left on the cluster; one note per run reaped."""
    kubectl = kubectl or Kubectl()
    notes: list[str] = []
    for namespace, run_dir in sorted(drill_namespaces(kubectl).items()):
        data = dead_run_state(run_dir, expect={"namespace": namespace})
        if data is None:
            continue
        stop_keeper(data.get("keeper"))
        # first what outlives the namespace (a lost node back: the pods on it are then deleted for real)
        settled = mark_reaped(run_dir, data, keeper=None)
        delete_namespace(kubectl, namespace)
        notes.append(f"{run_dir or namespace}: removed what a dead run left behind: namespace {namespace}")
        notes += settled
    return notes

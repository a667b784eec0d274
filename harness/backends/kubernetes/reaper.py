"""Dead runs: delete the namespace (and stop the port-forward keeper) of every drill run whose process is gone.

A namespace is a drill run's when it carries the ``drill.run-id`` label; its ``drill/run-dir`` annotation
leads to ``stack.json``. The run is dead when that file is missing, says ``down``, or names an owner
process that no longer exists. Detached stacks (``drill stack up``) are never touched.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from harness.backends.docker import _owner_dead, close_out_ledger, read_state
from harness.backends.kubernetes.cluster import Kubectl
from harness.backends.kubernetes.control import STATE_FILE, delete_namespace, stop_keeper
from harness.backends.kubernetes.manifests import ANNOTATION_RUN_DIR, LABEL_RUN_ID
from harness.errors import BackendError


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
        try:
            data: dict[str, Any] = read_state(Path(run_dir)) if run_dir else {"status": "gone"}
        except BackendError:
            data = {"status": "gone"}
        if data.get("namespace", namespace) != namespace:
            data = {"status": "gone"}  # the run directory was reused by another run
        if data.get("status") not in ("down", "gone") and not _owner_dead(data.get("owner")):
            continue
        stop_keeper(data.get("keeper"))
        delete_namespace(kubectl, namespace)
        notes.append(f"{run_dir or namespace}: removed what a dead run left behind: namespace {namespace}")
        if data.get("status") not in ("gone", "down"):
            data["status"] = "down"
            data["keeper"] = None
            with contextlib.suppress(OSError):
                (Path(run_dir) / STATE_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")
            close_out_ledger(Path(run_dir))
    return notes

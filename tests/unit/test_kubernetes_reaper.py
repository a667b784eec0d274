"""Which namespaces `drill cleanup` deletes: only those of drill runs whose process is gone (no cluster needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.backends.kubernetes import reaper
from harness.backends.kubernetes.cluster import KubectlResult
from harness.backends.kubernetes.manifests import ANNOTATION_RUN_DIR


class FakeKubectl:
    """Records what the reaper asks of the cluster; namespaces vanish once deleted."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = dict(namespaces)
        self.deleted: list[str] = []
        self.namespace: str | None = None

    def in_namespace(self, namespace: str) -> FakeKubectl:
        return self

    def json(self, *args: str, timeout: float = 60.0) -> Any:
        assert args[:2] == ("get", "namespaces")
        return {
            "items": [
                {"metadata": {"name": n, "annotations": {ANNOTATION_RUN_DIR: d}}, "status": {"phase": "Active"}}
                for n, d in self.namespaces.items()
            ]
        }

    def run(self, *args: str, **_: Any) -> KubectlResult:
        if args[:2] == ("delete", "namespace"):
            self.deleted.append(args[2])
            self.namespaces.pop(args[2], None)
        if args[:2] == ("get", "namespace"):
            found = args[2] in self.namespaces
            return KubectlResult(0 if found else 1, "", "" if found else "Error from server (NotFound)")
        return KubectlResult(0, "", "")


def _run_dir(tmp_path: Path, name: str, owner: dict[str, Any] | None, status: str = "up") -> Path:
    run_dir = tmp_path / name
    run_dir.mkdir()
    state = {"backend": "kubernetes", "namespace": f"drill-{name}", "status": status, "owner": owner, "keeper": None}
    (run_dir / "stack.json").write_text(json.dumps(state))
    return run_dir


def test_only_dead_runs_lose_their_namespace(tmp_path: Path) -> None:
    from harness.backends.reaper import proc_start as _proc_start

    me = {"pid": os.getpid(), "start": _proc_start(os.getpid())}
    dead = {"pid": 2**22 - 3, "start": "1"}
    live = _run_dir(tmp_path, "live", me)
    detached = _run_dir(tmp_path, "detached", None)
    crashed = _run_dir(tmp_path, "crashed", dead)
    fake = FakeKubectl(
        {
            "drill-live": str(live),
            "drill-detached": str(detached),
            "drill-crashed": str(crashed),
            "drill-orphan": str(tmp_path / "removed-run-dir"),
        }
    )
    notes = reaper.reap_dead_runs(fake)  # type: ignore[arg-type]
    assert sorted(fake.deleted) == ["drill-crashed", "drill-orphan"]
    assert len(notes) == 2 and all("removed what a dead run left behind" in n for n in notes)
    assert json.loads((crashed / "stack.json").read_text())["status"] == "down"

"""The one-off pod that runs an operator command while a service is down (kubernetes backend), without a cluster."""

from __future__ import annotations

from typing import Any

from harness.backends.kubernetes import exec as k8s_exec
from harness.backends.kubernetes.cluster import KubectlResult


class RecordingKubectl:
    """Answers like a cluster whose one-off pod succeeded; records what was applied and asked."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.asked: list[tuple[str, ...]] = []

    def apply(self, manifest: dict[str, Any], timeout: float = 60.0) -> None:
        self.applied.append(manifest)

    def run(self, *args: str, check: bool = True, **_: Any) -> KubectlResult:
        self.asked.append(args)
        if args[:2] == ("get", "pod"):
            return KubectlResult(0, "Succeeded", "")
        if args[0] == "logs":
            return KubectlResult(0, "NOT RUNNING\n", "")
        return KubectlResult(0, "", "")

    def json(self, *args: str, **_: Any) -> Any:
        name = self.applied[-1]["spec"]["containers"][0]["name"]
        return {"status": {"containerStatuses": [{"name": name, "state": {"terminated": {"exitCode": 3}}}]}}


def test_the_one_off_container_is_never_named_like_the_service_a_crash_loop_kills() -> None:
    kubectl = RecordingKubectl()
    template = {"metadata": {"labels": {"drill.service": "engine", "drill.run-id": "r1"}},
                "spec": {"containers": [{"name": "engine", "image": "x", "args": ["serve"],
                                         "ports": [{"name": "http"}]}]}}
    result = k8s_exec.run_once(kubectl, template, "engine", ["engine-ctl", "status"],  # type: ignore[arg-type]
                               workdir="/work", env={}, timeout=5.0)
    (pod,) = kubectl.applied
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "engine-once" and "args" not in container and "ports" not in container
    assert "drill.service" not in pod["metadata"]["labels"] and pod["metadata"]["labels"]["drill.once"] == "1"
    assert (result.exit_code, result.output) == (3, "NOT RUNNING\n")  # read from the renamed container
    assert any(a[0] == "logs" and a[-1] == "engine-once" for a in kubectl.asked)
    assert template["spec"]["containers"][0]["name"] == "engine"  # the Deployment's template is untouched

"""The port-forward keeper: every service's named ports on 127.0.0.1, across pod restarts and rescheduling.

Run as its own process (``python -m harness.backends.kubernetes.forward SPEC``), in its own session, so a
detached ``drill stack up`` keeps its addresses after the CLI exits. SPEC is a JSON file::

    {"kubeconfig": "...", "namespace": "drill-...", "logs": "<run_dir>/logs",
     "state": "<run_dir>/port-forward-state.json",
     "services": {"broker": {"41234": 7100, "41235": 7101}, ...}}

Every second (at once on SIGUSR1, which the backend sends after it starts a service) it lists the
namespace's pods and, for each service, keeps one ``kubectl port-forward pod/<running pod>
--address 127.0.0.1 <local>:<remote> ...`` running, on the same local ports: a killed container keeps
its pod (the forward survives); a pod replaced by scale 0 -> 1 or rescheduled to another node gets a new
forward on the same ports. After every change it writes STATE, ``{"broker": "<pod>", ...}``: the pod each
service's forward goes to, so the backend knows whether a health answer on 127.0.0.1 came from the newest pod
or from one being replaced. It exits, stopping its children, on SIGTERM or when the namespace is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.backends.kubernetes.cluster import Kubectl
from harness.backends.kubernetes.manifests import LABEL_SERVICE
from harness.errors import DrillError

POLL_S = 1.0


def newest_pods(pods: list[dict[str, Any]], *, running: bool = True) -> dict[str, dict[str, Any]]:
    """Service -> its newest pod that is not terminating (with ``running``: only a pod in phase Running)."""
    best: dict[str, dict[str, Any]] = {}
    for pod in pods:
        meta = pod["metadata"]
        service = (meta.get("labels") or {}).get(LABEL_SERVICE)
        if not service or meta.get("deletionTimestamp"):
            continue
        if running and pod.get("status", {}).get("phase") != "Running":
            continue
        created = str(meta.get("creationTimestamp", ""))
        if service not in best or created > str(best[service]["metadata"].get("creationTimestamp", "")):
            best[service] = pod
    return best


def running_pods(pods: list[dict[str, Any]]) -> dict[str, str]:
    """Service -> the name of its newest Running, not terminating, pod."""
    return {service: str(pod["metadata"]["name"]) for service, pod in newest_pods(pods).items()}


class Keeper:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.kubectl = Kubectl(Path(spec["kubeconfig"]), spec["namespace"])
        self.logs = Path(spec["logs"])
        self.state = Path(spec["state"]) if spec.get("state") else None
        self.services: dict[str, dict[str, int]] = {
            s: {str(k): int(v) for k, v in ports.items()} for s, ports in spec["services"].items()
        }
        self.forwards: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
        self.wake = threading.Event()
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGUSR1, lambda *_: self.wake.set())
        self.logs.mkdir(parents=True, exist_ok=True)
        last_ns_check = 0.0
        try:
            while not self.stopping:
                if time.monotonic() - last_ns_check > 5:
                    last_ns_check = time.monotonic()
                    gone = self.kubectl.run(
                        "get", "namespace", str(self.kubectl.namespace), check=False, namespaced=False
                    )
                    if gone.code != 0 and "NotFound" in gone.stderr:
                        return 0
                try:
                    self.sync(running_pods(self.kubectl.json("get", "pods", timeout=15)["items"]))
                except DrillError as exc:
                    print(f"port-forward keeper: {exc}", file=sys.stderr, flush=True)
                self.wake.wait(POLL_S)
                self.wake.clear()
        finally:
            for _, proc in self.forwards.values():
                _end(proc)
        return 0

    def _stop(self, *_: Any) -> None:
        self.stopping = True
        self.wake.set()

    def sync(self, pods: dict[str, str]) -> None:
        before = {service: pod for service, (pod, _) in self.forwards.items()}
        self._sync(pods)
        after = {service: pod for service, (pod, _) in self.forwards.items()}
        if self.state is not None and (after != before or not self.state.exists()):
            write_state(self.state, after)

    def _sync(self, pods: dict[str, str]) -> None:
        for service, ports in self.services.items():
            pod = pods.get(service)
            current = self.forwards.get(service)
            if current is not None and current[0] == pod and current[1].poll() is None:
                continue
            if current is not None:
                _end(current[1])
                del self.forwards[service]
            if pod is None:
                continue
            mapping = [f"{local}:{remote}" for local, remote in ports.items()]
            argv = self.kubectl.argv("port-forward", f"pod/{pod}", "--address", "127.0.0.1", *mapping)
            with (self.logs / f"port-forward-{service}.log").open("ab") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.forwards[service] = (pod, proc)


def write_state(path: Path, forwards: dict[str, str]) -> None:
    """service -> the pod its forward goes to, replaced whole (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(forwards, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, str] | None:
    """What the keeper last wrote, or None before its first write."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.backends.kubernetes.forward SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return Keeper(spec).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

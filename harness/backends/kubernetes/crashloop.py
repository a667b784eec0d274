"""Kill in ``hold`` mode: the container is SIGKILLed again each time the kubelet restarts it, until the fault is
rolled back, like a service in a real crash loop (restartCount and back-off grow, the pod never serves).

Why: on Kubernetes a single SIGKILL heals itself in about 2 s (the kubelet restarts the container), faster
than a 1 s-scrape ``up == 0 for: 1s`` alert can see, so drills written for "the engine is down until the
on-call restarts it" (Q4) need the crash to last. ``DRILL_K8S_KILL=hold`` selects this; the default
``restart`` kills once and lets the kubelet restart it. The loop runs in the drill process: if that
process dies, the loop dies with it and the kubelet restarts the service (it never stays broken).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading

POLL_S = 0.1


def _ctr(socket: str, *args: str) -> str:
    proc = subprocess.run(
        ["ctr", "-a", socket, "-n", "k8s.io", *args], capture_output=True, text=True, timeout=20, check=False
    )
    return proc.stdout


def kill_running(socket: str, namespace: str, service: str) -> int:
    """SIGKILL every running task of ``service``'s containers in ``namespace`` on this node; how many."""
    selector = f'labels."io.kubernetes.pod.namespace"=={namespace},labels."io.kubernetes.container.name"=={service}'
    ids = set(_ctr(socket, "containers", "ls", "-q", selector).split())
    killed = 0
    for line in _ctr(socket, "tasks", "ls").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0] in ids and fields[-1].upper() == "RUNNING":
            _ctr(socket, "tasks", "kill", "-s", "SIGKILL", fields[0])
            killed += 1
    return killed


class CrashLoop:
    def __init__(self, socket: str, namespace: str, service: str) -> None:
        self.socket, self.namespace, self.service = socket, namespace, service
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"k8s-crashloop-{service}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.kills += kill_running(self.socket, self.namespace, self.service)
            self._stop.wait(POLL_S)

"""Kill in ``hold`` mode (the default): the container is SIGKILLed again each time the kubelet restarts it, while
the Deployment is scaled to zero, so a crashed service stays down until the on-call restarts it.

Why: on Kubernetes a single SIGKILL heals itself in about 2 s (the kubelet restarts the container), faster
than a 1 s-scrape ``up == 0 for: 1s`` alert can see, while the features say "the trading engine crashes ...
the on-call restarts it" (Q4), as on the other backends where nothing restarts it. The loop only bridges the
second between the SIGKILL and the pod's deletion (it ends when the pod is gone), so no restarted process
serves and the deletion never SIGTERMs a live one. ``DRILL_K8S_KILL=restart`` kills once and lets the
kubelet restart it. The loop runs in the drill process; the scale to zero is in the cluster, recorded in
``stack.json`` as the service's intent, and ``drill cleanup`` scales it back after a crash of the drill.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable

from harness.errors import DrillError

POLL_S = 0.1
DONE_EVERY_S = 1.0


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
    """Kill ``service``'s restarted containers every ``POLL_S`` until :meth:`stop`, or until ``done()`` says
    there is nothing left to restart (asked every ``DONE_EVERY_S``: the pod is gone after a scale to zero)."""

    def __init__(self, socket: str, namespace: str, service: str, *, done: Callable[[], bool] | None = None) -> None:
        self.socket, self.namespace, self.service = socket, namespace, service
        self.done = done
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"k8s-crashloop-{service}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        asked = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.kills += kill_running(self.socket, self.namespace, self.service)
            if self.done is not None and time.monotonic() - asked >= DONE_EVERY_S:
                asked = time.monotonic()
                with contextlib.suppress(DrillError, OSError, subprocess.SubprocessError):  # asked again
                    if self.done():
                        return
            self._stop.wait(POLL_S)

"""Service logs: ``kubectl logs`` of the service's container, followed into ``<run_dir>/logs/<service>.log``.

The follower runs in a thread and restarts ``kubectl logs -f`` whenever it ends (the container was
killed and restarted, or the pod replaced), continuing from the time of the last line it copied, so
the file holds the service's whole log across restarts as the log probes expect.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from harness.backends.kubernetes.cluster import Kubectl


class LogFollower:
    def __init__(self, kubectl: Kubectl, service: str, path: Path, current_pod: Callable[[], str | None]) -> None:
        self.kubectl = kubectl
        self.service = service
        self.path = path
        self.current_pod = current_pod
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"k8s-logs-{service}", daemon=True)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        self.ready.wait(3.0)

    def close(self) -> None:
        self.stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def _loop(self) -> None:
        since: str | None = None
        with self.path.open("ab") as out:
            while not self.stop.is_set():
                pod = self.current_pod()
                if pod is None:
                    self.ready.set()
                    self.stop.wait(0.5)
                    continue
                args = ["logs", "-f", pod, "-c", self.service]
                if since is not None:
                    args.append(f"--since-time={since}")
                self._proc = subprocess.Popen(
                    self.kubectl.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                )
                first = True
                assert self._proc.stdout is not None
                for line in iter(self._proc.stdout.readline, b""):
                    out.write(line)
                    out.flush()
                    if first:
                        first = False
                        self.ready.set()
                    if self.stop.is_set():
                        break
                with contextlib.suppress(OSError):
                    self._proc.terminate()
                self._proc.wait()
                since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the next container's lines
                self.ready.set()
                self.stop.wait(0.3)


def tail(kubectl: Kubectl, pod: str | None, service: str, lines: int) -> list[str]:
    if pod is None:
        return []
    got = kubectl.run("logs", pod, "-c", service, f"--tail={lines}", check=False, timeout=15)
    if got.code != 0:
        got = kubectl.run("logs", pod, "-c", service, "--previous", f"--tail={lines}", check=False, timeout=15)
    return got.stdout.splitlines()[-lines:]

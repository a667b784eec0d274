"""Start real service processes on free loopback ports for integration tests, and always stop them.

Each process runs in its own session (process group) so ``stop()`` reaches its children too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# re-exported: one port picker for harness and tests (below the kernel's ephemeral range, leased)
from harness.backends.ports import free_port as free_port


def http_json(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, decoded JSON or text) for one request; HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    text = raw.decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@dataclass
class ServiceProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    health_url: str | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``timeout``; returns the exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, as in a drill)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)


def start_service(
    name: str,
    argv: list[str],
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    health_url: str | None = None,
    ports: dict[str, int] | None = None,
    timeout: float = 15.0,
) -> ServiceProcess:
    """Start ``argv`` (``python`` is replaced by this interpreter) and wait until ``health_url`` is 200."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = dict(os.environ)
    full_env.update(env or {})
    if argv and argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=full_env, start_new_session=True
        )
    proc = ServiceProcess(name, popen, log_path, health_url, dict(ports or {}))
    if health_url is None:
        return proc
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {popen.returncode} before it was healthy:\n{proc.log_text()[-3000:]}"
            )
        try:
            status, body = http_json("GET", health_url, timeout=1.0)
            if status == 200:
                return proc
            last = f"HTTP {status}: {body}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(
        f"{name} not healthy at {health_url} within {timeout}s (last: {last}):\n{proc.log_text()[-3000:]}"
    )

"""Service control of an attached stack: the declared commands, and what the harness did with them.

The harness cannot see the processes of a stack it did not start, so:

* **liveness** is "accepts TCP connections" on the service's health port (or first address): a
  frozen process still does (the kernel answers), a killed or stopped one does not;
* **what the harness did** (stopped, paused) is written to ``<run_dir>/stack.json`` *before* the
  command runs, so a rollback, also one ``drill cleanup`` runs from another process after a crash,
  knows to resume a paused service rather than start it;
* every action checks first that the command which reverts it is declared (``kill``/``stop`` need
  ``start``, ``pause`` needs ``resume``), so nothing is done that could not be undone.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.attach.exec import Executor
from harness.backends.base import Endpoint, ServiceState
from harness.errors import BackendError, ServiceStartError
from harness.stack import ServiceSpec, StackDescription
from harness.stack_attach import AttachSpec

POLL_S = 0.05
PAUSE_CHECK_S = 5.0  # a paused service must stop answering its health endpoint within this


def accepts_connections(host: str, port: int, timeout: float = 1.0) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, "accepts connections"
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc.strerror or exc}"


class StateFile:
    """``<run_dir>/stack.json``: which stack this run attached to, and what it did to each service."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self.path}:{exc.lineno}: corrupt stack state: {exc.msg}") from exc
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.path)

    def intended(self, service: str) -> ServiceState | None:
        rec = self.read().get("services", {}).get(service)
        return ServiceState(rec["intended"]) if isinstance(rec, dict) and "intended" in rec else None

    def set_intended(self, service: str, state: ServiceState) -> None:
        data = self.read()
        data.setdefault("services", {})[service] = {"intended": state.value, "at": time.time()}
        self.write(data)


class AttachControl:
    """kill/stop/start/pause/resume/restart through the declared commands (mixed into the attach backend)."""

    stack: StackDescription
    spec: AttachSpec
    executor: Executor
    state_file: StateFile
    endpoint: Callable[[str, str], Endpoint]
    _healthy: Callable[[ServiceSpec], tuple[bool, str]]
    log_tail: Callable[..., list[str]]

    def _probe_endpoint(self, service: str) -> Endpoint:
        spec = self.stack.service(service)
        port = spec.health.port if spec.health is not None else next(iter(spec.ports))
        return self.endpoint(service, port)

    def _alive(self, service: str) -> tuple[bool, str]:
        ep = self._probe_endpoint(service)
        return accepts_connections(ep.host, ep.port)

    def state(self, service: str) -> ServiceState:
        intended = self.state_file.intended(service)
        if intended is ServiceState.PAUSED:
            return ServiceState.PAUSED
        if self._alive(service)[0]:
            return ServiceState.RUNNING
        return ServiceState.STOPPED if intended is ServiceState.STOPPED else ServiceState.DEAD

    def _require_running(self, service: str, action: str) -> None:
        alive, observed = self._alive(service)
        if not alive:
            ep = self._probe_endpoint(service)
            raise BackendError(
                f"cannot {action} {service}: it does not accept connections at {ep.address} ({observed})",
                hint=f"a drill starts from a running stack: start {service} and check "
                f"{self.spec.service(service).field}.addresses",
            )

    def _until(self, service: str, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def _take_down(self, service: str, action: str) -> None:
        (command,) = self.spec.commands_for(service, action)  # refused here if start is not declared
        self._require_running(service, action)
        self.state_file.set_intended(service, ServiceState.STOPPED)  # before acting: a crash now is revertible
        self.executor.control(command, service)
        if not self._until(service, lambda: not self._alive(service)[0], self.spec.command_timeout_s):
            ep = self._probe_endpoint(service)
            raise BackendError(
                f"`{command.text}` exited 0 but {service} still accepts connections at {ep.address} "
                f"after {self.spec.command_timeout_s:g}s",
                hint=f"make {command.field} act on the process that listens there ({command.location})",
            )

    def kill(self, service: str) -> None:
        self._take_down(service, "kill")

    def stop(self, service: str) -> None:
        self._take_down(service, "stop")

    def start(self, service: str) -> None:
        (command,) = self.spec.commands_for(service, "start")
        self.executor.control(command, service)
        self.wait_healthy(service, self.spec.health_timeout_s)
        self.state_file.set_intended(service, ServiceState.RUNNING)

    def restart(self, service: str) -> None:
        commands = self.spec.commands_for(service, "restart")
        if len(commands) == 2:  # no restart command: stop, then start
            self._take_down(service, "stop")
            self.start(service)
            return
        self.executor.control(commands[0], service)
        self.wait_healthy(service, self.spec.health_timeout_s)
        self.state_file.set_intended(service, ServiceState.RUNNING)

    def pause(self, service: str) -> None:
        (command,) = self.spec.commands_for(service, "pause")  # refused here if resume is not declared
        self._require_running(service, "pause")
        self.state_file.set_intended(service, ServiceState.PAUSED)
        self.executor.control(command, service)
        spec = self.stack.service(service)
        if spec.health is not None and not self._until(service, lambda: not self._healthy(spec)[0], PAUSE_CHECK_S):
            raise BackendError(
                f"`{command.text}` exited 0 but {service} still answers its health endpoint after {PAUSE_CHECK_S:g}s",
                hint=f"make {command.field} freeze the process that listens there ({command.location})",
            )

    def resume(self, service: str) -> None:
        (command,) = self.spec.commands_for(service, "resume")
        self.executor.control(command, service)
        self.state_file.set_intended(service, ServiceState.RUNNING)

    def wait_healthy(self, service: str, timeout: float) -> None:
        spec = self.stack.service(service)
        deadline = time.monotonic() + timeout
        while True:
            ok, observed = self._healthy(spec)
            if ok:
                return
            if time.monotonic() > deadline:
                ep = self._probe_endpoint(service)
                tail = "\n    ".join(self.log_tail(service, 15))
                raise ServiceStartError(
                    f"{service} is not healthy within {timeout:g}s at {ep.url}"
                    f"{spec.health.path if spec.health else ''} (last: {observed})\n"
                    f"  last log lines:\n    {tail}",
                    hint=f"check {service} by hand; its commands are under {self.spec.service(service).field}",
                )
            time.sleep(POLL_S)

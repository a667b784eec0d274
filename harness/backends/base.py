"""The backend interface: what every way of running a stack (processes, containers, later k8s) offers.

Kept deliberately small so a new backend touches neither features nor steps. Faults and probes
only ever use this interface, never a backend's internals.
"""

from __future__ import annotations

import enum
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from harness.errors import BackendError, DrillError, StackFileError
from harness.stack import ServiceSpec, StackDescription

if TYPE_CHECKING:  # requests and toxiproxy-python cost ~60 ms to import: only a run that injects pays it
    from harness.toxiproxy import ToxiproxyAdapter

LOOPBACK = "127.0.0.1"


class ServiceState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # stopped on purpose (stop/kill fault, or never started)
    DEAD = "dead"  # exited without being asked to


@dataclass(frozen=True)
class Endpoint:
    """A host-reachable address of one named port of one service."""

    service: str
    port_name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class LinkInfo:
    """A network path through Toxiproxy: the proxy's name and where it listens."""

    name: str
    proxy_name: str
    listen: str
    upstream: str


class Backend(Protocol):
    """One running (or runnable) stack."""

    name: str
    stack: StackDescription
    run_dir: Path

    @property
    def workdir(self) -> Path:
        """The stack's working directory as the host sees it (artifacts/, configs/)."""
        ...

    @property
    def toxiproxy(self) -> ToxiproxyAdapter: ...

    def up(self) -> None: ...

    def down(self) -> None: ...

    def endpoint(self, service: str, port_name: str) -> Endpoint: ...

    def link(self, name: str) -> LinkInfo: ...

    def state(self, service: str) -> ServiceState: ...

    def kill(self, service: str) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        ...

    def stop(self, service: str) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after a grace period)."""
        ...

    def start(self, service: str) -> None:
        """Start a stopped/dead service and wait until it is healthy."""
        ...

    def restart(self, service: str) -> None: ...

    def pause(self, service: str) -> None:
        """Freeze (SIGSTOP / docker pause): alive but unresponsive."""
        ...

    def resume(self, service: str) -> None: ...

    def wait_healthy(self, service: str, timeout: float) -> None: ...

    def log_tail(self, service: str, lines: int = 20) -> list[str]: ...

    def log_path(self, service: str) -> Path: ...

    def operator(self, args: list[str], timeout: float = 30.0) -> CommandResult:
        """Run the stack's operator CLI (e.g. ``engine-ctl status``) where the stack runs."""
        ...

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        """Run a runbook shell block in the stack's working directory (or inside its container)."""
        ...


class StackAddresses:
    """Where a started stack's services and links are reachable from the host, shared by every backend.

    A backend fills ``ports`` (``"service.port_name" -> host port``, always on 127.0.0.1) and ``links``
    when it starts the stack; these lookups then work the same on processes, containers or pods.
    """

    stack: StackDescription
    run_dir: Path
    ports: dict[str, int]
    links: dict[str, LinkInfo]
    _toxiproxy: ToxiproxyAdapter | None
    health_timeout: float
    # how often the health loops ask the backend whether a service can still come up (0: every round)
    problem_every_s: ClassVar[float] = 0.0
    # pause between two rounds of the all-healthy loop at start-up
    health_poll_s: ClassVar[float] = 0.05

    @property
    def workdir(self) -> Path:
        return self.run_dir / "workdir"

    @property
    def toxiproxy(self) -> ToxiproxyAdapter:
        if self._toxiproxy is None:
            services = self.stack.services_with_role("toxiproxy")
            if not services:
                raise StackFileError(
                    "the stack has links but no service with 'x-drill.role: toxiproxy'", location=str(self.stack.path)
                )
            from harness.toxiproxy import ToxiproxyAdapter

            ep = self.endpoint(services[0].name, next(iter(services[0].ports)))
            self._toxiproxy = ToxiproxyAdapter(ep.host, ep.port)
        return self._toxiproxy

    def endpoint(self, service: str, port_name: str) -> Endpoint:
        spec = self.stack.service(service)
        if port_name not in spec.ports:
            raise StackFileError(
                f"service '{service}' has no port named '{port_name}'",
                location=f"{self.stack.path}:{spec.line}",
                hint=f"its ports: {', '.join(spec.ports) or 'none'}",
            )
        key = f"{service}.{port_name}"
        if key not in self.ports:
            raise BackendError(f"stack is not up: no host port for {key}", hint="run `drill stack up` first")
        return Endpoint(service, port_name, LOOPBACK, self.ports[key])

    def link(self, name: str) -> LinkInfo:
        self.stack.link(name)
        if name not in self.links:
            raise BackendError(f"stack is not up: link {name} has no proxy", hint="run `drill stack up` first")
        return self.links[name]

    def _healthy(self, spec: ServiceSpec) -> tuple[bool, str]:
        """(healthy, what was observed) for the service's declared health endpoint, asked from the host."""
        if spec.health is None:
            return True, "no health endpoint"
        url = f"{self.endpoint(spec.name, spec.health.port).url}{spec.health.path}"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                return resp.status == 200, f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            from harness.probes._http import health_summary  # every failing check in full, never cut

            return False, health_summary(exc.code, exc.read().decode(errors="replace"))
        except (OSError, ValueError) as exc:  # (a connection closed before any answer is an OSError too)
            return False, f"unreachable: {exc}"
        except http.client.HTTPException as exc:  # an answer, but not HTTP: another program holds the port
            return False, f"not HTTP at {url} ({type(exc).__name__}: {str(exc)[:120]}): is another program on it?"

    # --- waiting for health (the backend says why waiting is pointless; the loops are the same everywhere) ----

    def _start_problem(self, service: str) -> str | None:
        """Why ``service`` will not become healthy while the stack starts (exited, cannot start), else None."""
        return None

    def _not_serving(self, service: str) -> str | None:
        """Why waiting for ``service``'s health is pointless (not running), else None."""
        return None

    def _start_failure(self, name: str, why: str) -> DrillError:
        """The error for ``name`` not coming up: ``why`` plus what the backend can show (its last log lines)."""
        raise NotImplementedError

    def _wait_all_healthy(self, names: list[str]) -> None:
        """Every service in ``names`` answers its health endpoint within ``health_timeout``, or the error says
        which did not, why (it exited, cannot start) and its last health answer."""
        deadline = time.monotonic() + self.health_timeout
        pending = list(names)
        last: dict[str, str] = {}
        asked = float("-inf")
        while pending:
            if time.monotonic() - asked >= self.problem_every_s:
                asked = time.monotonic()
                for name in pending:
                    problem = self._start_problem(name)
                    if problem:
                        raise self._start_failure(name, problem)
            for name in list(pending):
                ok, observed = self._healthy(self.stack.services[name])
                last[name] = observed
                if ok:
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise self._start_failure(
                    pending[0], f"not healthy within {self.health_timeout:.0f}s (last: {last.get(pending[0])})"
                )
            if pending:
                time.sleep(self.health_poll_s)

    def wait_healthy(self, service: str, timeout: float) -> None:
        spec = self.stack.service(service)
        deadline = time.monotonic() + timeout
        asked = float("-inf")
        while True:
            if time.monotonic() - asked >= self.problem_every_s:
                asked = time.monotonic()
                problem = self._not_serving(service)
                if problem:
                    raise self._start_failure(service, problem)
            ok, observed = self._healthy(spec)
            if ok:
                return
            if time.monotonic() > deadline:
                raise self._start_failure(service, f"not healthy within {timeout:.0f}s (last: {observed})")
            time.sleep(0.05)

"""An in-memory Backend for unit tests of faults, waits and probes: records every call, touches nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.adapter import Endpoint as AdminEndpoint
from harness.backends.base import CommandResult, Endpoint, LinkInfo, ServiceState
from harness.errors import BackendError, ToxiproxyError
from harness.stack import HealthSpec, LinkSpec, LocalSpec, ModeSpec, OperatorSpec, ServiceSpec, StackDescription
from harness.toxiproxy import Proxy, Toxic


def make_stack(path: Path, *, mode_env: dict[str, str] | None = None) -> StackDescription:
    def svc(name: str, ports: dict[str, int], deps: tuple[str, ...] = (), role: str = "app",
            env: dict[str, str] | None = None) -> ServiceSpec:
        return ServiceSpec(name, role, ports, HealthSpec(next(iter(ports)), "/health") if ports else None,
                           LocalSpec(("true",), env or {}), None, deps, 1)

    services = {
        "toxiproxy": svc("toxiproxy", {"api": 8474}, role="toxiproxy"),
        "broker": svc("broker", {"http": 7101, "order": 7100}),
        "marketdata": svc("marketdata", {"http": 7200}),
        "traderunner": svc("traderunner", {"http": 7300}, ("broker", "marketdata", "toxiproxy"), env=mode_env),
        "dashboard": svc("dashboard", {"http": 7400}, ("traderunner",)),
    }
    return StackDescription(
        name="mockstack",
        path=path / "docker-compose.yml",
        services=services,
        links={"broker": LinkSpec("broker", "traderunner", "broker", "order", 8666, 1)},
        workdir_service="traderunner",
        operator=OperatorSpec("traderunner", ("traderunner",)),
        mode=ModeSpec("TR_MODE", "lab"),
    )


@dataclass
class FakeProxy:
    enabled: bool = True
    toxics: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeToxiproxy:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls
        self.by_name: dict[str, FakeProxy] = {"drill_broker": FakeProxy()}
        self.host, self.port = "127.0.0.1", 8474
        self.fail_on: set[str] = set()

    def _check(self, op: str) -> None:
        if op in self.fail_on:
            raise ToxiproxyError(f"{op}: Toxiproxy at http://127.0.0.1:8474 did not answer (ConnectionError)")

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.calls.append(("toxiproxy.set_enabled", name, enabled))
        self._check("set_enabled")
        self.by_name[name].enabled = enabled

    def add_toxic(self, proxy: str, name: str, type: str, stream: str = "downstream",  # noqa: A002
                  toxicity: float = 1.0, attributes: dict[str, Any] | None = None) -> None:
        self.calls.append(("toxiproxy.add_toxic", proxy, name, type, stream, toxicity, dict(attributes or {})))
        self._check("add_toxic")
        self.by_name[proxy].toxics[name] = {"type": type, "stream": stream, "attributes": attributes}

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = True) -> bool:
        self.calls.append(("toxiproxy.remove_toxic", proxy, name))
        self._check("remove_toxic")
        return self.by_name[proxy].toxics.pop(name, None) is not None

    def proxy(self, name: str) -> Proxy:  # a read: not among the calls the tests compare
        self._check("proxy")
        return self._proxy(name)

    def _proxy(self, name: str) -> Proxy:
        p = self.by_name[name]
        return Proxy(name, "127.0.0.1:8666", "127.0.0.1:7100", p.enabled,
                     tuple(Toxic(t, str(v["type"]), str(v["stream"]), 1.0) for t, v in p.toxics.items()))

    def proxies(self) -> dict[str, Proxy]:
        self.calls.append(("toxiproxy.proxies",))
        self._check("proxies")
        return {name: self._proxy(name) for name in self.by_name}

    def reset(self) -> None:
        self.calls.append(("toxiproxy.reset",))
        self._check("reset")
        for proxy in self.by_name.values():
            proxy.enabled = True
            proxy.toxics.clear()


class FakeBackend:
    """Services are states in a dict; every method call is appended to ``calls``."""

    name = "fake"

    def __init__(self, tmp: Path, *, mode_env: dict[str, str] | None = None) -> None:
        self.stack = make_stack(tmp, mode_env=mode_env)
        self.run_dir = tmp / "runs" / "run-1"
        self.run_dir.mkdir(parents=True)
        self._workdir = tmp / "work"
        self._workdir.mkdir()
        self.calls: list[tuple[Any, ...]] = []
        self.states = {name: ServiceState.RUNNING for name in self.stack.services}
        self._toxiproxy = FakeToxiproxy(self.calls)
        self.logs: dict[str, list[str]] = {}
        self.fail_on: set[str] = set()
        self.operator_results: list[CommandResult] = []
        self.run_id = "drill"
        self.links = {"broker": LinkInfo("broker", "drill_broker", "127.0.0.1:8666", "127.0.0.1:7100")}

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] in self.fail_on:
            raise BackendError(f"{call[0]} {call[1:]} failed (fake)")

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def toxiproxy(self) -> FakeToxiproxy:
        return self._toxiproxy

    def up(self) -> None:
        self._call("up")

    def down(self) -> None:
        self._call("down")

    def endpoint(self, service: str, port_name: str) -> Endpoint:
        self._call("endpoint", service, port_name)
        return Endpoint(service, port_name, "127.0.0.1", self.stack.services[service].ports[port_name])

    def link(self, name: str) -> LinkInfo:
        self._call("link", name)
        return LinkInfo(name, f"drill_{name}", "127.0.0.1:8666", "127.0.0.1:7100")

    def state(self, service: str) -> ServiceState:
        self._call("state", service)
        return self.states[service]

    def kill(self, service: str) -> None:
        self._call("kill", service)
        self.states[service] = ServiceState.STOPPED

    def stop(self, service: str) -> None:
        self._call("stop", service)
        self.states[service] = ServiceState.STOPPED

    def start(self, service: str) -> None:
        self._call("start", service)
        self.states[service] = ServiceState.RUNNING

    def restart(self, service: str) -> None:
        self._call("restart", service)
        self.states[service] = ServiceState.RUNNING

    def pause(self, service: str) -> None:
        self._call("pause", service)
        self.states[service] = ServiceState.PAUSED

    def resume(self, service: str) -> None:
        self._call("resume", service)
        self.states[service] = ServiceState.RUNNING

    def wait_healthy(self, service: str, timeout: float) -> None:
        self._call("wait_healthy", service)

    def log_tail(self, service: str, lines: int = 20) -> list[str]:
        self._call("log_tail", service, lines)
        return self.logs.get(service, [])[-lines:]

    def log_path(self, service: str) -> Path:
        return self._workdir / "artifacts" / "logs" / "latest.log"

    def operator(self, args: list[str], timeout: float = 30.0) -> CommandResult:
        self._call("operator", tuple(args))
        return self.operator_results.pop(0)

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        self._call("shell", script)
        return CommandResult(("bash", "-c", script), 0, "", "", 0.0)

    def service_calls(self) -> list[tuple[Any, ...]]:
        """Calls that change or read the stack (everything but endpoint/link look-ups)."""
        return [c for c in self.calls if c[0] not in ("endpoint", "link")]


# The admin endpoints a stack declares in x-drill.trading.faults (here: the mock's), for fault unit tests.
FEED = AdminEndpoint("marketdata", "http", "/admin/faults", "test")
SYMBOLS = AdminEndpoint("marketdata", "http", "/api/symbols", "test")
POSITION = AdminEndpoint("broker", "http", "/admin/positions", "test")
REJECT_RATE = AdminEndpoint("broker", "http", "/admin/reject-rate", "test")
FILL_LATENCY = AdminEndpoint("broker", "http", "/admin/fill-latency", "test")

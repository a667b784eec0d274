"""Service faults through the backend: kill, stop, pause, restart, full outage.

Rollbacks bring the service back and wait until it is healthy; each one checks the state first,
so it is a no-op on a service already running (idempotent, and safe after a half-applied inject).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from harness.backends.base import ServiceState
from harness.errors import BackendError
from harness.faults.base import Fault, FaultContext, Params, ParamValue

if TYPE_CHECKING:
    from harness.backends.base import Backend

HEALTHY_TIMEOUT_S = 30.0


class _ServiceFault(Fault):
    def __init__(self, backend: Backend, service: str, *, healthy_timeout_s: float = HEALTHY_TIMEOUT_S,
                 ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.service = service
        self.healthy_timeout_s = healthy_timeout_s

    @property
    def target(self) -> str:
        return f"service {self.service}"

    def params(self) -> dict[str, ParamValue]:
        return {"service": self.service, "healthy_timeout_s": self.healthy_timeout_s}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("service"), healthy_timeout_s=params.number("healthy_timeout_s"),
                   ctx=ctx, fault_id=fault_id)

    def _bring_back(self) -> None:
        state = self.backend.state(self.service)
        if state is ServiceState.PAUSED:
            self.backend.resume(self.service)
        elif state is not ServiceState.RUNNING:
            self.backend.start(self.service)
        self.backend.wait_healthy(self.service, self.healthy_timeout_s)


class Kill(_ServiceFault):
    """SIGKILL: a crash with no chance to clean up. Rollback: start it and wait until healthy."""

    kind = "kill"

    @property
    def action(self) -> str:
        return "SIGKILL (crash)"

    @property
    def expected_effect(self) -> str:
        return f"{self.service} is gone at once; its health endpoint stops answering and alerts on it fire"

    def _inject(self) -> None:
        self.backend.kill(self.service)

    def _rollback(self) -> None:
        self._bring_back()


class Stop(_ServiceFault):
    """Graceful stop (SIGTERM). Rollback: start it and wait until healthy."""

    kind = "stop"

    @property
    def action(self) -> str:
        return "graceful stop (SIGTERM)"

    @property
    def expected_effect(self) -> str:
        return f"{self.service} shuts down cleanly and stops answering"

    def _inject(self) -> None:
        self.backend.stop(self.service)

    def _rollback(self) -> None:
        self._bring_back()


class Pause(_ServiceFault):
    """Freeze (SIGSTOP / docker pause): alive but unresponsive. Rollback: resume."""

    kind = "pause"

    @property
    def action(self) -> str:
        return "freeze (SIGSTOP)"

    @property
    def expected_effect(self) -> str:
        return f"{self.service} stays up but answers nothing: connections to it hang, heartbeats stop"

    def _inject(self) -> None:
        self.backend.pause(self.service)

    def _rollback(self) -> None:
        self._bring_back()


class Restart(_ServiceFault):
    """Restart (stop + start). Rollback has nothing to revert but makes sure the service runs."""

    kind = "restart"

    @property
    def action(self) -> str:
        return "restart"

    @property
    def expected_effect(self) -> str:
        return f"{self.service} is briefly unavailable, then recovers its state (SQLite) and serves again"

    def _inject(self) -> None:
        self.backend.restart(self.service)

    def _rollback(self) -> None:
        self._bring_back()


class FullOutage(Fault):
    """Kill every application service at once. Rollback: start them all in dependency order."""

    kind = "full_outage"

    def __init__(self, backend: Backend, services: list[str] | None = None, *,
                 healthy_timeout_s: float = HEALTHY_TIMEOUT_S, ctx: FaultContext | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        chosen = services if services is not None else [s.name for s in backend.stack.app_services()]
        for name in chosen:
            backend.stack.service(name)  # unknown name: StackFileError listing the known ones
        order = backend.stack.start_order()
        self.services = sorted(chosen, key=order.index)
        self.healthy_timeout_s = healthy_timeout_s

    @property
    def target(self) -> str:
        return f"services {', '.join(self.services)}"

    @property
    def action(self) -> str:
        return "SIGKILL every application service (full outage)"

    @property
    def expected_effect(self) -> str:
        return "nothing answers; every service alert fires; recovery follows the runbook's restart order"

    def params(self) -> dict[str, ParamValue]:
        return {"services": list(self.services), "healthy_timeout_s": self.healthy_timeout_s}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.texts("services"), healthy_timeout_s=params.number("healthy_timeout_s"),
                   ctx=ctx, fault_id=fault_id)

    def _inject(self) -> None:
        for name in reversed(self.services):  # dependants first
            self.backend.kill(name)

    def _rollback(self) -> None:
        errors: list[str] = []
        for name in self.services:  # dependencies first
            try:
                state = self.backend.state(name)
                if state is ServiceState.PAUSED:
                    self.backend.resume(name)
                elif state is not ServiceState.RUNNING:
                    self.backend.start(name)
                self.backend.wait_healthy(name, self.healthy_timeout_s)
            except BackendError as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            raise BackendError(
                "could not bring back: " + "; ".join(errors),
                hint="start them by hand in this order: " + " -> ".join(self.services),
            )

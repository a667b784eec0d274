"""The stack as a whole: starting state, crashes, restarts, health."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.faults.service import FullOutage, Kill, Pause
from harness.probes.prometheus import MetricQuery
from harness.steps._common import role_url, service_called
from harness.steps.trading import mode_query
from harness.trading import services_healthy


@given(parsers.parse("the trading stack is running in {mode} mode"))
def stack_running(drill: Drill, mode: str) -> None:
    """The stack is up and healthy (started fresh for this scenario) and Prometheus sees the engine in MODE."""
    drill.expect(
        MetricQuery(role_url(drill.backend, "prometheus"), mode_query(drill, mode), "==", 1),
        within=15,
        label=f"stack running in {mode} mode",
    )


@when("every service of the trading stack crashes")
def full_outage(drill: Drill) -> None:
    """SIGKILL every application service at once (monitoring keeps running to see it)."""
    # the venue's orders before the crash: a reading that cannot be made fails the step (never "[]")
    drill.remembered["venue_orders_before"] = drill.trading.venue_orders() if drill.dry_run is None else []
    drill.inject(FullOutage(drill.backend, ctx=drill.ctx))


@when("the on-call restarts every service")
def restart_stack(drill: Drill) -> None:
    """Start every crashed service again, in dependency order, and wait for each to be healthy."""
    drill.restore(lambda f: isinstance(f, FullOutage))


@when(parsers.parse("the {title} crashes"))
def service_crashes(drill: Drill, title: str) -> None:
    """SIGKILL one service (by how the stack description titles it: trading engine, dashboard, broker...)."""
    drill.inject(Kill(drill.backend, service_called(drill.backend, title), ctx=drill.ctx))


@when(parsers.parse("the on-call restarts the {title}"))
def service_restarts(drill: Drill, title: str) -> None:
    """Start the crashed service again and wait until it is healthy."""
    name = service_called(drill.backend, title)
    drill.restore(lambda f: isinstance(f, Kill) and f.service == name)


@when(parsers.parse("{title} freezes"))
def service_freezes(drill: Drill, title: str) -> None:
    """SIGSTOP a service: alive, holding its ports, answering nothing."""
    drill.inject(Pause(drill.backend, service_called(drill.backend, title), ctx=drill.ctx))


@when(parsers.parse("{title} is thawed"))
def service_thawed(drill: Drill, title: str) -> None:
    """SIGCONT the frozen service."""
    name = service_called(drill.backend, title)
    drill.restore(lambda f: isinstance(f, Pause) and f.service == name)


@then(parsers.parse("every service is healthy within {seconds:d} seconds"))
def all_healthy(drill: Drill, seconds: int) -> None:
    """Every service of the stack answers its health endpoint with 200 (counts as recovered)."""
    names = list(drill.backend.stack.services)
    drill.expect(services_healthy(drill.backend, names), within=seconds, kind=EventKind.RECOVERED)

"""The trading engine: positions, orders, the kill switch, the broker session, mode, RTO."""

from __future__ import annotations

import re
import shlex

from pytest_bdd import given, parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.errors import InputError, WaitTimeout
from harness.faults.trading import PriceShock
from harness.probes.cli import OperatorCommand
from harness.probes.http import HttpHealth
from harness.probes.logs import LogMatch
from harness.probes.prometheus import MetricQuery
from harness.steps._common import role_url
from harness.trading import (
    Check,
    kill_switch_active,
    no_double_fill,
    no_duplicate_order_keys,
    no_new_orders,
    no_order_lost,
    open_positions,
    orders_sent_at_least,
    record_time_to_kill,
    venue_connected,
)
from harness.waiting import Observation


@given("the trading engine holds open positions")
def holds_positions(drill: Drill) -> None:
    """Wait (up to 60 s) until the engine holds positions (x-drill.trading.positions)."""
    drill.expect(open_positions(drill.trading), within=60, kind=EventKind.NOTE)


@given(parsers.parse("the trading engine has sent at least {n:d} orders"))
def has_sent_orders(drill: Drill, n: int) -> None:
    """Wait (up to 60 s) until the orders journal has N rows."""
    drill.expect(orders_sent_at_least(drill.trading, n), within=60, kind=EventKind.NOTE)


@when(parsers.parse("the market drops {pct:d}% over {bars:d} bars on every symbol"))
def market_drops(drill: Drill, pct: int, bars: int) -> None:
    """A real price move on the feed (not a corruption): every symbol falls PCT% over BARS bars."""
    endpoint = drill.backend.stack.trading.fault_endpoint("feed")
    drill.inject(PriceShock(drill.backend, pct=-float(pct), bars=bars, endpoint=endpoint, ctx=drill.ctx))


@then(parsers.parse('the trading engine log shows "{text}" within {seconds:d} seconds'))
def engine_log_shows(drill: Drill, text: str, seconds: int) -> None:
    """A line containing TEXT appears in the engine's log (x-drill log of the engine) after the first fault."""
    service = drill.backend.stack.trading.engine
    probe = LogMatch(drill.backend.log_path(service), re.escape(text), offset=drill.log_mark(service))
    drill.expect(probe, within=seconds, service=service, label=f"log: {text}")


@then(parsers.parse("no new order is sent for {seconds:d} seconds"))
def no_orders(drill: Drill, seconds: int) -> None:
    """The orders journal gains no row for SECONDS; then time-to-kill is put on the timeline."""
    drill.holds(no_new_orders(drill.trading), for_s=seconds, service=drill.backend.stack.trading.engine)
    if drill.dry_run is None:
        record_time_to_kill(drill, drill.trading)


@when(parsers.parse('the on-call resets the kill switch with approval from "{approver}"'))
def reset_kill_switch(drill: Drill, approver: str) -> None:
    """The stack's reset_kill_switch command (x-drill.trading.commands) must succeed."""
    _must_succeed(drill, drill.command_line("reset_kill_switch", approver=approver, reason="drill recovery"))


@when(parsers.parse('the on-call trips the kill switch by hand because "{reason}"'))
def trip_kill_switch(drill: Drill, reason: str) -> None:
    _must_succeed(drill, drill.command_line("trip_kill_switch", reason=reason))


@then("the kill switch is still active")
def kill_switch_still_active(drill: Drill) -> None:
    drill.expect(kill_switch_active(drill.trading, True), within=2, kind=EventKind.NOTE)


@then(parsers.parse("trading resumes within an RTO of {seconds:d} seconds"))
def trading_resumes(drill: Drill, seconds: int) -> None:
    """Kill switch off and the engine healthy again (recovered); RTO = fault injected -> recovered."""
    drill.set_rto_target(seconds)
    service = drill.backend.stack.trading.engine
    switch = kill_switch_active(drill.trading, False)
    health = HttpHealth.for_service(drill.backend, service)

    def both() -> Observation:
        a, b = switch(), health()
        return Observation(a.ok and b.ok, f"{a.observed}; health: {b.observed}")

    drill.expect(
        Check("trading resumed: kill switch off and engine healthy", both),
        within=seconds,
        kind=EventKind.RECOVERED,
        service=service,
    )
    _assert_rto(drill)


@then(parsers.parse("the recovery meets an RTO of {seconds:d} seconds"))
def recovery_meets_rto(drill: Drill, seconds: int) -> None:
    """RTO (first fault injected -> first recovery observed) is at most SECONDS."""
    drill.set_rto_target(seconds)
    _assert_rto(drill)


def _assert_rto(drill: Drill) -> None:
    if drill.dry_run is not None:
        return
    rto = next(m for m in drill.measurements() if m.name == "RTO")
    if not rto.met:
        raise WaitTimeout(
            f"RTO missed: expected recovery within {rto.target_s:g}s of the fault, observed {rto.describe()}",
            hint="see the timeline in the report for where the time went",
        )


@given("the trading engine is connected to the broker")
def connected(drill: Drill) -> None:
    drill.expect(_broker_connected(drill), within=15, kind=EventKind.NOTE)


@then(parsers.parse("the trading engine is connected to the broker within {seconds:d} seconds"))
def reconnected(drill: Drill, seconds: int) -> None:
    """The engine's health check 'broker' is ok again (counts as recovered)."""
    drill.expect(
        _broker_connected(drill), within=seconds, kind=EventKind.RECOVERED, service=drill.backend.stack.trading.engine
    )


def _broker_connected(drill: Drill) -> Check:
    return venue_connected(drill.trading)


@then("the trading engine's positions match the broker's")
def positions_match(drill: Drill) -> None:
    """The stack's reconcile command exits 0: the engine's positions equal the venue's."""
    drill.expect(operator_probe(drill, drill.command_line("reconcile"), 0), within=10, kind=EventKind.NOTE)


@when(parsers.parse('the on-call accepts the broker\'s positions with approval from "{approver}"'))
def accept_broker_positions(drill: Drill, approver: str) -> None:
    _must_succeed(drill, drill.command_line("accept_venue_positions", approver=approver))


@then("no acknowledged order was lost")
def nothing_lost(drill: Drill) -> None:
    """Every order the broker held before the crash survives, and the engine's journal knows every broker order."""
    before = drill.remembered.get("venue_orders_before", [])
    drill.expect(no_order_lost(drill.trading, before), within=10, kind=EventKind.NOTE)


@then("no order was filled twice")
def no_double_fills(drill: Drill) -> None:
    drill.expect(no_double_fill(drill.trading), within=5, kind=EventKind.NOTE)
    if "order_duplicates" in drill.backend.stack.trading.commands:
        probe = operator_probe(drill, drill.command_line("order_duplicates"), 0)
        drill.expect(probe, within=5, kind=EventKind.NOTE)


@then(parsers.parse('the trading engine reports mode "{mode}"'))
def reports_mode(drill: Drill, mode: str) -> None:
    drill.expect(
        MetricQuery(role_url(drill.backend, "prometheus"), mode_query(drill, mode), "==", 1),
        within=10,
        kind=EventKind.NOTE,
    )


def _must_succeed(drill: Drill, command: str) -> None:
    result = drill.operator(command)
    if result is not None and result.exit_code != 0:
        raise WaitTimeout(f"`{command}` failed with exit code {result.exit_code}:\n{result.output[-2000:]}")


@then("no idempotency key appears twice in the order journal")
def idempotency_check(drill: Drill) -> None:
    """The runbook's idempotency check: no order key repeated in the engine's orders journal."""
    drill.expect(no_duplicate_order_keys(drill.trading), within=5, kind=EventKind.NOTE)


def mode_query(drill: Drill, mode: str) -> str:
    """The PromQL that is 1 when the engine runs in MODE (x-drill.trading.metrics.mode)."""
    return drill.backend.stack.trading.metric("mode").replace("{mode}", mode)


def operator_probe(drill: Drill, command: str, exit_code: int | None) -> OperatorCommand:
    """A probe running one of the stack's operator command lines (x-drill.trading.commands)."""
    argv = shlex.split(command)
    op = drill.backend.stack.operator
    prefix = len(op.command) if op is not None and tuple(argv[: len(op.command)]) == op.command else 0
    if op is None or prefix == 0:
        raise InputError(
            f"'{command}' is not an operator command of this stack",
            hint="x-drill.trading.commands must start with the x-drill.operator command",
        )
    return OperatorCommand(drill.backend, argv[prefix:], exit_code=exit_code)

"""The trading engine: positions, orders, the kill switch, the broker session, mode, RTO."""

from __future__ import annotations

import re
import shlex

from pytest_bdd import given, parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.errors import WaitTimeout
from harness.faults.trading import PriceShock
from harness.probes.cli import OperatorCommand
from harness.probes.http import HttpHealth
from harness.probes.logs import LogMatch
from harness.probes.prometheus import MetricQuery
from harness.trading import (
    Check,
    kill_switch_active,
    no_double_fill,
    no_new_orders,
    no_order_lost,
    open_positions,
    orders_sent_at_least,
    record_time_to_kill,
)
from harness.waiting import Observation
from scenarios.steps._common import role_url, workdir_service


@given("the trading engine holds open positions")
def holds_positions(drill: Drill) -> None:
    """Wait (up to 60 s) until the strategy has built positions (artifacts/state/positions.json)."""
    drill.expect(open_positions(drill.backend.workdir), within=60, kind=EventKind.NOTE)


@given(parsers.parse("the trading engine has sent at least {n:d} orders"))
def has_sent_orders(drill: Drill, n: int) -> None:
    """Wait (up to 60 s) until the orders journal has N rows."""
    drill.expect(orders_sent_at_least(drill.backend.workdir, n), within=60, kind=EventKind.NOTE)


@when(parsers.parse("the market drops {pct:d}% over {bars:d} bars on every symbol"))
def market_drops(drill: Drill, pct: int, bars: int) -> None:
    """A real price move on the feed (not a corruption): every symbol falls PCT% over BARS bars."""
    drill.inject(PriceShock(drill.backend, pct=-float(pct), bars=bars, ctx=drill.ctx))


@then(parsers.parse('the trading engine log shows "{text}" within {seconds:d} seconds'))
def engine_log_shows(drill: Drill, text: str, seconds: int) -> None:
    """A line containing TEXT appears in the engine's log (artifacts/logs/latest.log) after the first fault."""
    service = workdir_service(drill.backend)
    probe = LogMatch(drill.backend.log_path(service), re.escape(text), offset=drill.log_mark(service))
    drill.expect(probe, within=seconds, service=service, label=f"log: {text}")


@then(parsers.parse("no new order is sent for {seconds:d} seconds"))
def no_orders(drill: Drill, seconds: int) -> None:
    """The orders journal gains no row for SECONDS; then time-to-kill is put on the timeline."""
    drill.holds(no_new_orders(drill.backend.workdir), for_s=seconds, service=workdir_service(drill.backend))
    if drill.dry_run is None:
        record_time_to_kill(drill, workdir_service(drill.backend))


@when(parsers.parse('the on-call resets the kill switch with approval from "{approver}"'))
def reset_kill_switch(drill: Drill, approver: str) -> None:
    """`traderunner reset-kill-switch --approved-by APPROVER --reason ...` must succeed."""
    _must_succeed(
        drill, f"traderunner reset-kill-switch --approved-by {shlex.quote(approver)} --reason 'drill recovery'"
    )


@when(parsers.parse('the on-call trips the kill switch by hand because "{reason}"'))
def trip_kill_switch(drill: Drill, reason: str) -> None:
    _must_succeed(drill, f"traderunner trip-kill-switch --reason {shlex.quote(reason)} --by on-call")


@then("the kill switch is still active")
def kill_switch_still_active(drill: Drill) -> None:
    drill.expect(kill_switch_active(drill.backend.workdir, True), within=2, kind=EventKind.NOTE)


@then(parsers.parse("trading resumes within an RTO of {seconds:d} seconds"))
def trading_resumes(drill: Drill, seconds: int) -> None:
    """Kill switch off and the engine healthy again (recovered); RTO = fault injected -> recovered."""
    drill.set_rto_target(seconds)
    service = workdir_service(drill.backend)
    switch = kill_switch_active(drill.backend.workdir, False)
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
        _broker_connected(drill), within=seconds, kind=EventKind.RECOVERED, service=workdir_service(drill.backend)
    )


def _broker_connected(drill: Drill) -> HttpHealth:
    return HttpHealth.for_service(
        drill.backend, workdir_service(drill.backend), status=200, field="checks.broker.ok", equals=True
    )


@then("the trading engine's positions match the broker's")
def positions_match(drill: Drill) -> None:
    """`traderunner reconcile` exits 0: expected (own fills) equals actual (broker) positions."""
    drill.expect(OperatorCommand(drill.backend, ["reconcile"], exit_code=0), within=10, kind=EventKind.NOTE)


@when(parsers.parse('the on-call accepts the broker\'s positions with approval from "{approver}"'))
def accept_broker_positions(drill: Drill, approver: str) -> None:
    _must_succeed(drill, f"traderunner reconcile --accept-broker --approved-by {shlex.quote(approver)}")


@then("no acknowledged order was lost")
def nothing_lost(drill: Drill) -> None:
    """Every order the broker held before the crash survives, and the engine's journal knows every broker order."""
    before = drill.remembered.get("broker_orders_before", [])
    drill.expect(no_order_lost(drill.backend, before), within=10, kind=EventKind.NOTE)


@then("no order was filled twice")
def no_double_fills(drill: Drill) -> None:
    drill.expect(no_double_fill(drill.backend), within=5, kind=EventKind.NOTE)
    drill.expect(OperatorCommand(drill.backend, ["orders", "duplicates"], exit_code=0), within=5, kind=EventKind.NOTE)


@then(parsers.parse('the trading engine reports mode "{mode}"'))
def reports_mode(drill: Drill, mode: str) -> None:
    drill.expect(
        MetricQuery(role_url(drill.backend, "prometheus"), f'traderunner_mode{{mode="{mode}"}}', "==", 1),
        within=10,
        kind=EventKind.NOTE,
    )


def _must_succeed(drill: Drill, command: str) -> None:
    result = drill.operator(command)
    if result is not None and result.exit_code != 0:
        raise WaitTimeout(f"`{command}` failed with exit code {result.exit_code}:\n{result.output[-2000:]}")


@then("no idempotency key appears twice in the order journal")
def idempotency_check(drill: Drill) -> None:
    """The runbook's idempotency check: no idempotency_key repeated across artifacts/orders/*.csv."""
    from harness.probes.files import CsvDuplicates
    from harness.trading import ORDERS_GLOB

    drill.expect(CsvDuplicates(drill.backend.workdir, ORDERS_GLOB, "idempotency_key"), within=5, kind=EventKind.NOTE)

"""Market data quality: corrupted feeds, the SLA report, promotion gates."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.faults.data import FeedCorruption
from harness.steps.trading import operator_probe
from harness.trading import Check, sla_status_is
from harness.waiting import Observation


@when(parsers.parse("the market data feed starts serving {corruption} bars"))
def feed_corrupt(drill: Drill, corruption: str) -> None:
    """The vendor feed serves corrupt bars: nan, negative, ohlc, duplicate, out_of_order, gap."""
    endpoint = drill.backend.stack.trading.fault_endpoint("feed")
    drill.inject(FeedCorruption(drill.backend, corruption, endpoint=endpoint, ctx=drill.ctx))


@when("the market data feed goes stale")
def feed_stale(drill: Drill) -> None:
    """The vendor stops publishing new bars."""
    endpoint = drill.backend.stack.trading.fault_endpoint("feed")
    drill.inject(FeedCorruption(drill.backend, "stale", endpoint=endpoint, ctx=drill.ctx))


@when("the market data feed is repaired")
def feed_repaired(drill: Drill) -> None:
    """The vendor fixes its feed (and backfills clean history)."""
    drill.restore(lambda f: isinstance(f, FeedCorruption))


@then(parsers.parse('the SLA report shows status "{status}"'))
def sla_status(drill: Drill, status: str) -> None:
    drill.expect(
        sla_status_is(drill.trading, status), within=5, kind=EventKind.NOTE
    )


@then(parsers.parse('the SLA report shows status "{status}" within {seconds:d} seconds'))
def sla_status_within(drill: Drill, status: str, seconds: int) -> None:
    """The SLA report reaches STATUS (for "ok", this is the recovery)."""
    kind = EventKind.RECOVERED if status == "ok" else EventKind.DETECTED
    drill.expect(
        sla_status_is(drill.trading, status), within=seconds, kind=kind
    )


@then("promotion to paper is refused")
def promotion_refused(drill: Drill) -> None:
    """The stack's promote command (x-drill.trading.commands.promote) to paper exits non-zero while the SLA is bad."""
    probe = operator_probe(drill, drill.command_line("promote", target="paper"), None)

    def refused() -> Observation:
        obs = probe()
        code = obs.value.exit_code if obs.value is not None else None
        return Observation(code not in (None, 0), f"promotion: {obs.observed}", code)

    drill.expect(Check("promotion to paper is refused (non-zero exit)", refused), within=5, kind=EventKind.NOTE)


@then("promotion to paper is allowed")
def promotion_allowed(drill: Drill) -> None:
    probe = operator_probe(drill, drill.command_line("promote", target="paper"), 0)
    drill.expect(probe, within=10, kind=EventKind.NOTE)

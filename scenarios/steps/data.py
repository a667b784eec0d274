"""Market data quality: corrupted feeds, the SLA report, promotion gates."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from harness.clock import EventKind
from harness.drill import Drill
from harness.faults.data import FeedCorruption
from harness.probes.cli import OperatorCommand
from harness.probes.files import JsonFileField
from harness.trading import SLA_REPORT


@when(parsers.parse("the market data feed starts serving {corruption} bars"))
def feed_corrupt(drill: Drill, corruption: str) -> None:
    """The vendor feed serves corrupt bars: nan, negative, ohlc, duplicate, out_of_order, gap."""
    drill.inject(FeedCorruption(drill.backend, corruption, ctx=drill.ctx))


@when("the market data feed goes stale")
def feed_stale(drill: Drill) -> None:
    """The vendor stops publishing new bars."""
    drill.inject(FeedCorruption(drill.backend, "stale", ctx=drill.ctx))


@when("the market data feed is repaired")
def feed_repaired(drill: Drill) -> None:
    """The vendor fixes its feed (and backfills clean history)."""
    drill.restore(lambda f: isinstance(f, FeedCorruption))


@then(parsers.parse('the SLA report shows status "{status}"'))
def sla_status(drill: Drill, status: str) -> None:
    drill.expect(
        JsonFileField(SLA_REPORT, "status", equals=status, root=drill.backend.workdir), within=5, kind=EventKind.NOTE
    )


@then(parsers.parse('the SLA report shows status "{status}" within {seconds:d} seconds'))
def sla_status_within(drill: Drill, status: str, seconds: int) -> None:
    """The SLA report reaches STATUS (for "ok", this is the recovery)."""
    kind = EventKind.RECOVERED if status == "ok" else EventKind.DETECTED
    drill.expect(
        JsonFileField(SLA_REPORT, "status", equals=status, root=drill.backend.workdir), within=seconds, kind=kind
    )


@then("promotion to paper is refused")
def promotion_refused(drill: Drill) -> None:
    """`traderunner promote --to paper` is refused (exit 3) while the SLA is violated."""
    drill.expect(
        OperatorCommand(drill.backend, ["promote", "--to", "paper"], exit_code=3), within=5, kind=EventKind.NOTE
    )


@then("promotion to paper is allowed")
def promotion_allowed(drill: Drill) -> None:
    drill.expect(
        OperatorCommand(drill.backend, ["promote", "--to", "paper"], exit_code=0), within=10, kind=EventKind.NOTE
    )

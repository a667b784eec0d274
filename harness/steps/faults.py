"""Network and broker-side faults: Toxiproxy on the stack's links, the broker's admin controls."""

from __future__ import annotations

from pytest_bdd import parsers, when

from harness.drill import Drill
from harness.errors import WaitTimeout
from harness.faults.network import LinkDown, Toxic
from harness.faults.trading import InjectedPosition, LatencySpike, RejectRateSpike


@when(parsers.parse("the {link} link goes down"))
def link_down(drill: Drill, link: str) -> None:
    """The Toxiproxy proxy of the link is disabled: connections are refused and existing ones dropped."""
    drill.inject(LinkDown(drill.backend, link, ctx=drill.ctx))


@when(parsers.parse("the {link} link stops answering"))
def link_stalls(drill: Drill, link: str) -> None:
    """A silent stall: connections stay open but no byte comes back (Toxiproxy timeout toxic, timeout=0)."""
    drill.inject(Toxic(drill.backend, link, "timeout", stream="downstream", timeout=0, ctx=drill.ctx))


@when(parsers.parse("the {link} link resets every connection"))
def link_resets(drill: Drill, link: str) -> None:
    """Every connection is reset by the peer (Toxiproxy reset_peer toxic)."""
    drill.inject(Toxic(drill.backend, link, "reset_peer", stream="downstream", timeout=0, ctx=drill.ctx))


@when(parsers.parse("the {link} link is restored"))
def link_restored(drill: Drill, link: str) -> None:
    """Roll back every fault on the link (the network is back)."""
    drill.restore(lambda f: getattr(f, "link", None) == link)


@when(parsers.parse("the {link} link gets {ms:d} ms of latency"))
def link_latency(drill: Drill, link: str, ms: int) -> None:
    """Add latency to every packet from the far end of the link."""
    drill.inject(Toxic(drill.backend, link, "latency", stream="downstream", latency=ms, ctx=drill.ctx))


@when(parsers.parse("the {link} link gets {ms:d} ms of latency with {jitter:d} ms jitter"))
def link_latency_jitter(drill: Drill, link: str, ms: int, jitter: int) -> None:
    """Latency with jitter (Toxiproxy latency toxic with a jitter attribute)."""
    drill.inject(Toxic(drill.backend, link, "latency", stream="downstream", latency=ms, jitter=jitter, ctx=drill.ctx))


@when(parsers.parse("the broker starts rejecting {pct:d}% of orders"))
def broker_rejects(drill: Drill, pct: int) -> None:
    """Set the broker's reject rate (a broker-side incident); the previous rate is restored on rollback."""
    endpoint = drill.backend.stack.trading.fault_endpoint("reject_rate")
    drill.inject(RejectRateSpike(drill.backend, pct / 100.0, endpoint=endpoint, ctx=drill.ctx))


@when("the broker's reject rate is restored")
def broker_reject_rate_restored(drill: Drill) -> None:
    drill.restore(lambda f: isinstance(f, RejectRateSpike))


@when(parsers.parse("the broker starts filling orders after {ms:d} ms"))
def broker_slow_fills(drill: Drill, ms: int) -> None:
    """Slow the broker's fills (execution latency at the venue)."""
    endpoint = drill.backend.stack.trading.fault_endpoint("fill_latency")
    drill.inject(LatencySpike(drill.backend, ms, endpoint=endpoint, ctx=drill.ctx))


@when(parsers.parse("the broker books an unexpected position of {qty:d} units"))
def unexpected_position(drill: Drill, qty: int) -> None:
    """A position appears at the broker with no order behind it, in a symbol the engine already holds."""
    endpoint = drill.backend.stack.trading.fault_endpoint("position")
    if drill.dry_run is not None:
        symbol = "<a symbol the engine holds>"
    else:
        held = drill.trading.positions()  # an unavailable reading fails the step, naming the declaration
        symbol = next((s for s, q in sorted(held.items()) if q), None) or next(iter(sorted(held)), "")
        if not symbol:
            raise WaitTimeout("the engine holds no position to put an unexpected one beside",
                              hint="start the scenario with 'Given the trading engine holds open positions'")
    drill.inject(InjectedPosition(drill.backend, symbol, qty, endpoint=endpoint, ctx=drill.ctx))

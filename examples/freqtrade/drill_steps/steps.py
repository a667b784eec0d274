"""Freqtrade's own words: what the shared step library cannot say about this bot.

Each step is thin: it reads Freqtrade's REST API the way ``freqtrade-client`` does (the address and
login from the bot's ``config.json``), or the venue's truth, and hands the condition to ``drill``.
Everything that means the same as on the mock stack (links down, alerts, crashes, the kill switch,
no order lost, RTO) is a shared step; see the features.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import requests
from pytest_bdd import given, parsers, then, when

from drill_steps.faults import VenueFault
from harness.clock import EventKind
from harness.drill import Drill
from harness.errors import WaitTimeout
from harness.trading import Check, run_stack_command
from harness.waiting import Observation

FRESH_TRADE_S = 20  # a trade younger than this is far from the strategy's 60 s timed exit


# --- Freqtrade's REST API and the venue, read as freqtrade-client reads them ---------------------------


def bot(drill: Drill, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """Call Freqtrade's REST API (``/api/v1/<path>``) with the login of its config.json."""
    config = json.loads((drill.backend.workdir / "config.json").read_text(encoding="utf-8"))["api_server"]
    url = f"{drill.backend.endpoint('freqtrade', 'http').url}/api/v1/{path}"
    reply = requests.request(method, url, json=body, timeout=timeout,
                             auth=(config["username"], config["password"]))
    if reply.status_code != 200:
        raise WaitTimeout(f"Freqtrade {method} /api/v1/{path} answered HTTP {reply.status_code}: {reply.text[:200]}")
    return reply.json()


def venue_requests(drill: Drill, status: str) -> float:
    """Exchange requests the venue answered with ``status``, the exporter's pings excluded."""
    text = requests.get(f"{drill.backend.endpoint('venue', 'http').url}/metrics", timeout=3).text
    pattern = re.compile(rf'^venue_requests_total\{{endpoint="([^"]+)",status="{status}"\}} (\S+)$', re.M)
    return sum(float(n) for endpoint, n in pattern.findall(text) if endpoint != "ping")


def observe(description: str, fn: Any) -> Check:
    """A check whose reading errors (bot busy, venue down) are observations, not failures."""
    def look() -> Observation:
        try:
            return fn()  # type: ignore[no-any-return]
        except (requests.RequestException, WaitTimeout, OSError, ValueError) as exc:
            return Observation(False, f"{type(exc).__name__}: {str(exc)[:200]}")
    return Check(description, look)


# --- steps ---------------------------------------------------------------------------------------------


@given("Freqtrade's open trades and the venue's orders are noted")
def note_trades(drill: Drill) -> None:
    """Remember the bot's open trade ids and the venue's orders (for 'no acknowledged order was lost')."""
    if drill.dry_run is not None:
        return
    drill.remembered["open_trades_before"] = [t["trade_id"] for t in bot(drill, "GET", "status")]
    drill.remembered["venue_orders_before"] = drill.trading.venue_orders()


@when("Freqtrade's exit order for a fresh trade is executed by the venue but its reply is lost")
def lost_exit_ack(drill: Drill) -> None:
    """Wait for a fresh trade, make the venue drop its next order reply, then forceexit the trade."""
    if drill.dry_run is not None:
        drill.inject(VenueFault(drill.backend, "lost_ack", count=1, ctx=drill.ctx))
        return

    def fresh() -> Observation:
        young = [t for t in bot(drill, "GET", "status")
                 if not t["has_open_orders"] and time.time() - t["open_timestamp"] / 1000 < FRESH_TRADE_S]
        return Observation(bool(young), f"fresh trades: {[t['trade_id'] for t in young]}", young)

    result = drill.expect(observe("a freshly opened Freqtrade trade", fresh), within=150, kind=EventKind.NOTE)
    trade = result.observation.value[0] if result is not None else None
    assert trade is not None
    drill.remembered["trade_id"] = trade["trade_id"]
    drill.remembered["venue_orders_before"] = drill.trading.venue_orders()
    drill.inject(VenueFault(drill.backend, "lost_ack", count=1, ctx=drill.ctx))
    config = json.loads((drill.backend.workdir / "config.json").read_text(encoding="utf-8"))["api_server"]
    url = f"{drill.backend.endpoint('freqtrade', 'http').url}/api/v1/forceexit"
    reply = requests.post(url, json={"tradeid": str(trade["trade_id"])}, timeout=60,
                          auth=(config["username"], config["password"]))
    drill.timeline.note(f"forceexit of trade {trade['trade_id']}: HTTP {reply.status_code} {reply.text[:200]}")


@then("Freqtrade still shows the trade open while the venue has filled its exit")
def diverged(drill: Drill) -> None:
    """The bot's record and the venue's disagree: the trade is open in the bot, the venue sold."""
    tid = drill.remembered.get("trade_id")

    def look() -> Observation:
        open_ids = [t["trade_id"] for t in bot(drill, "GET", "status")]
        known = {str(o.key) for o in drill.trading.orders()}
        before = {o.key for o in drill.remembered.get("venue_orders_before", [])}
        unknown = [o for o in drill.trading.venue_orders()
                   if o.key not in before and o.key not in known and o.filled_qty > 0]
        ok = tid in open_ids and bool(unknown)
        return Observation(ok, f"trade {tid} open in the bot: {tid in open_ids}; venue orders the bot does not "
                           f"know: {[o.order_id for o in unknown]}")

    drill.expect(observe("bot and venue diverged", look), within=20, kind=EventKind.NOTE)


@when("the on-call reloads the trade from the venue")
def reload_trade(drill: Drill) -> None:
    """RUNBOOK.md "Diverged Trades" step 3: the stack's reload_trade command (an HTTP call) for the trade."""
    result = run_stack_command(drill, "reload_trade", id=str(drill.remembered.get("trade_id", 0)))
    if result is not None and result.exit_code != 0:
        raise WaitTimeout(f"reload_trade failed: {result.stderr} {result.stdout[:500]}",
                          hint="the runbook's reload step does not work as written")


@then(parsers.parse('Freqtrade closes the trade with exit reason "{reason}" within {seconds:d} seconds'))
def trade_closed(drill: Drill, reason: str, seconds: int) -> None:
    """The reloaded trade is closed in the bot with EXIT_REASON (counts as recovered)."""
    tid = drill.remembered.get("trade_id", 0)

    def look() -> Observation:
        trade = bot(drill, "GET", f"trade/{tid}")
        ok = not trade["is_open"] and trade.get("exit_reason") == reason
        return Observation(ok, f"trade {tid}: is_open={trade['is_open']}, exit_reason={trade.get('exit_reason')}")

    drill.expect(observe(f"trade closed with exit_reason={reason}", look), within=seconds,
                 kind=EventKind.RECOVERED, service="freqtrade")


@when(parsers.parse("the venue bans Freqtrade with HTTP {status:d} for {seconds:d} seconds"))
def venue_bans(drill: Drill, status: int, seconds: int) -> None:
    if drill.dry_run is None:
        drill.remembered["refused_before"] = venue_requests(drill, str(status))
        drill.remembered["ban"] = (status, seconds, time.monotonic())
    drill.inject(VenueFault(drill.backend, "ban", status=status, seconds=seconds, ctx=drill.ctx))


@then(parsers.parse("Freqtrade backs off: at most {n:d} of its requests hit the ban"))
def backs_off(drill: Drill, n: int) -> None:
    """Count the bot's requests the venue refused until the ban ran out: a bot without back-off sends hundreds."""
    if drill.dry_run is not None:
        return
    status, seconds, started = drill.remembered["ban"]
    time.sleep(max(0.0, seconds + 0.5 - (time.monotonic() - started)))
    refused = venue_requests(drill, str(status)) - drill.remembered["refused_before"]
    drill.timeline.note(f"bot requests refused during the {seconds} s ban: {refused:.0f}")
    if refused > n:
        raise WaitTimeout(f"expected at most {n} bot requests during the {seconds} s ban (back-off); "
                          f"observed {refused:.0f}", hint="the bot does not back off: it escalates the ban")


@then(parsers.parse("Freqtrade's requests reach the venue again within {seconds:d} seconds"))
def requests_reach_venue(drill: Drill, seconds: int) -> None:
    """A bot request is answered 200 by the venue after this step began (counts as recovered)."""
    mark = venue_requests(drill, "200") if drill.dry_run is None else 0.0

    def look() -> Observation:
        now = venue_requests(drill, "200")
        return Observation(now > mark, f"bot requests answered 200 since: {now - mark:.0f}")

    drill.expect(observe("a bot request reaches the venue", look), within=seconds, kind=EventKind.RECOVERED,
                 service="freqtrade")


@then(parsers.parse("Freqtrade's main loop is fresh within {seconds:d} seconds"))
def loop_fresh(drill: Drill, seconds: int) -> None:
    """``last_process`` of /api/v1/health is younger than 5 s (counts as recovered)."""
    def look() -> Observation:
        last = bot(drill, "GET", "health", timeout=3).get("last_process_ts")
        age = float("inf") if last is None else time.time() - float(last)
        return Observation(age < 5, f"last_process {age:.1f}s ago")

    drill.expect(observe("Freqtrade's last_process is fresh", look), within=seconds, kind=EventKind.RECOVERED,
                 service="freqtrade")


@then(parsers.parse('Freqtrade reports state "{state}"'))
def reports_state(drill: Drill, state: str) -> None:
    def look() -> Observation:
        observed = bot(drill, "GET", "show_config", timeout=5).get("state")
        return Observation(observed == state, f"state {observed}")

    drill.expect(observe(f"Freqtrade state {state}", look), within=10, kind=EventKind.NOTE)


@then("the restarted Freqtrade still knows every trade it had open")
def trades_recovered(drill: Drill) -> None:
    """Each trade open before the crash is open again (or closed by its own exit since): none forgotten."""
    before = set(drill.remembered.get("open_trades_before", []))

    def look() -> Observation:
        open_ids = {t["trade_id"] for t in bot(drill, "GET", "status")}
        closed = {t["trade_id"] for t in bot(drill, "GET", "trades?limit=500")["trades"]}
        missing = sorted(before - open_ids - closed)
        return Observation(bool(before) and not missing,
                           f"open before: {sorted(before)}; open now: {sorted(open_ids)}; forgotten: {missing}")

    drill.expect(observe("open trades recovered after the restart", look), within=30, kind=EventKind.NOTE)


@then(parsers.parse("Freqtrade opens no new trade while its open trades exit within {seconds:d} seconds"))
def exits_but_no_entries(drill: Drill, seconds: int) -> None:
    """While entries are stopped: every open trade exits on its own rules, and no entry order is sent."""
    if drill.dry_run is not None:
        return
    entries = {r.key for r in drill.trading.orders() if r.side == "buy"}
    open_at_stop = {t["trade_id"] for t in bot(drill, "GET", "status")}

    def look() -> Observation:
        new = [r.key for r in drill.trading.orders() if r.side == "buy" and r.key not in entries]
        if new:
            raise WaitTimeout(f"entry order(s) {new} sent while entries are stopped")
        still = open_at_stop & {t["trade_id"] for t in bot(drill, "GET", "status")}
        return Observation(not still, f"trades open since the stop: {sorted(still)}; no new entry")

    drill.expect(Check("open trades exit, no new entry", look), within=seconds, kind=EventKind.NOTE)

    def no_entry() -> Observation:
        new = [r.key for r in drill.trading.orders() if r.side == "buy" and r.key not in entries]
        return Observation(not new, f"new entry orders: {new}")

    drill.holds(Check("no new entry with a free trade slot", no_entry), for_s=10, service="freqtrade")

"""Wiring of the marketdata service: feed + HTTP server + the ticker thread that publishes bars on time."""

from __future__ import annotations

import threading
import time
import traceback

from prometheus_client import CollectorRegistry

from mockstack.common.http import Check, HealthReport, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.common.universe import build_universe
from mockstack.marketdata.api import MarketdataAPI
from mockstack.marketdata.clock import BarClock, TimeSource
from mockstack.marketdata.config import MarketdataConfig, feed_age
from mockstack.marketdata.faults import FaultKind
from mockstack.marketdata.feed import FaultState, MarketFeed
from mockstack.marketdata.metrics import MarketdataMetrics
from mockstack.marketdata.walk import utc_text

SERVICE = "marketdata"
TICK_MAX_WAIT = 0.5
"""The ticker wakes at least this often (seconds), so health sees it alive even with slow bars."""
TICK_STALE_AFTER = 2.0
"""The ``clock`` health check fails when the ticker has not run for this long (seconds)."""


def _describe(state: FaultState) -> str:
    f = state.fault
    where = "every symbol" if f.symbol is None else f.symbol
    span = "until cleared" if f.bars is None else f"for {f.bars} bar{'s' if f.bars != 1 else ''}"
    what = f"shock of {f.pct:+g}%" if f.kind is FaultKind.SHOCK else f.kind.value
    return f"{what} on {where} {span}"


class _ServiceObserver:
    """Feeds publications and fault changes into the metrics and the event log."""

    def __init__(self, metrics: MarketdataMetrics, log: EventLog) -> None:
        self.metrics = metrics
        self.log = log

    def bars_published(self, new_bars: int, total: int, last_timestamp: int | None) -> None:
        self.metrics.observe_published(new_bars, last_timestamp)

    def fault_added(self, state: FaultState) -> None:
        f = state.fault
        self.metrics.active_faults.labels(kind=f.kind.value).inc()
        self.log.info(
            "fault_added",
            f"Fault {f.id} added: {_describe(state)}, from the bar at {utc_text(state.first_bar_timestamp)}",
            fault_id=f.id,
            kind=f.kind.value,
            symbol=f.symbol,
            bars=f.bars,
            pct=f.pct,
            first_bar_timestamp=state.first_bar_timestamp,
        )

    def fault_completed(self, state: FaultState) -> None:
        f = state.fault
        self.log.info(
            "fault_completed",
            f"Fault {f.id} ({_describe(state)}) has affected all its bars",
            fault_id=f.id,
            kind=f.kind.value,
            symbol=f.symbol,
            bars_affected=state.bars_affected,
        )

    def fault_cleared(self, state: FaultState, resumes_at: int | None) -> None:
        f = state.fault
        self.metrics.active_faults.labels(kind=f.kind.value).dec()
        if f.kind is FaultKind.STALE:
            effect = (
                f"feed resumes at the current simulated time {utc_text(resumes_at)}, "
                f"leaving a gap of {state.bars_affected} bars"
                if resumes_at is not None
                else "its window had already ended"
            )
        elif f.kind is FaultKind.SHOCK:
            effect = "the move stays in history"
        else:
            effect = "history is served clean again"
        self.log.info(
            "fault_cleared",
            f"Fault {f.id} cleared ({_describe(state)}): {effect}",
            fault_id=f.id,
            kind=f.kind.value,
            symbol=f.symbol,
            bars_affected=state.bars_affected,
            resumes_at=resumes_at,
        )


class MarketdataService:
    """One marketdata instance; ``start()`` serves HTTP and publishes bars until ``stop()``."""

    def __init__(
        self,
        config: MarketdataConfig,
        *,
        time_source: TimeSource = time.monotonic,
        wall_clock: TimeSource = time.time,
        log: EventLog | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.log = log if log is not None else EventLog(SERVICE)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = MarketdataMetrics(self.registry)
        self.instruments = build_universe(config.seed, config.symbols)
        age = feed_age(config.anchor_file, wall_clock) if config.anchor_file else 0.0
        clock = BarClock(config.start, config.bar_interval_ms, config.history_bars, time_source, age)
        self.feed = MarketFeed(
            self.instruments,
            seed=config.seed,
            volatility=config.volatility,
            clock=clock,
            observer=_ServiceObserver(self.metrics, self.log),
        )
        self.http = ServiceHTTP(SERVICE, config.host, config.http_port, self.registry, self.health)
        MarketdataAPI(self.feed, self.metrics, self.log).install(self.http)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_tick: float | None = None

    @property
    def port(self) -> int:
        return self.http.port

    def start(self) -> None:
        self._ticker = threading.Thread(target=self._tick_loop, name=f"{SERVICE}-ticker", daemon=True)
        self._ticker.start()
        self.http.start()
        c = self.config
        self.log.info(
            "service_started",
            f"Market data listening on http://{c.host}:{self.port}: {len(self.instruments)} symbols, "
            f"one M5 bar every {c.bar_interval_ms} ms, {c.history_bars} history bars",
            host=c.host,
            port=self.port,
            seed=c.seed,
            symbols=[i.symbol for i in self.instruments],
            bar_interval_ms=c.bar_interval_ms,
            start=c.start.isoformat(),
            history_bars=c.history_bars,
            volatility=c.volatility,
        )

    def stop(self) -> None:
        """Stop the ticker and the HTTP server (only call after :meth:`start`)."""
        self._stop.set()
        self.http.stop()
        if self._ticker is not None:
            self._ticker.join(timeout=1.0)
        status = self.feed.status()
        self.log.info(
            "service_stopped",
            f"Market data stopped after {status.bars_published} published bars",
            bars_published=status.bars_published,
        )

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.feed.advance()
            except Exception as exc:  # keep publishing; the failure is logged and health shows the gap
                self.log.error("tick_failed", f"Publishing bars failed: {exc!r}", traceback=traceback.format_exc())
            else:
                self._last_tick = time.monotonic()
            wait = self.feed.clock.seconds_until_next_bar() + 0.001
            self._stop.wait(min(TICK_MAX_WAIT, wait))

    def health(self) -> HealthReport:
        return HealthReport(live=True, checks={"clock": self._clock_check()})

    def _clock_check(self) -> Check:
        if self._ticker is None or not self._ticker.is_alive():
            return Check(False, "the bar ticker is not running")
        if self._last_tick is None:
            return Check(False, "the bar ticker has not run yet")
        age = time.monotonic() - self._last_tick
        if age > TICK_STALE_AFTER:
            return Check(False, f"the bar ticker last ran {age:.1f}s ago (limit {TICK_STALE_AFTER:.0f}s)")
        s = self.feed.status()
        detail = f"{s.bars_published} bars published, last at {s.last_bar_timestamp}, every {s.bar_interval_ms} ms"
        if s.stale:
            detail += f"; stale fault withholding bars of {', '.join(s.stale_symbols)}"
        return Check(True, detail)

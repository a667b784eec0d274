"""Wiring and lifecycle: state DB -> price book -> engine (matcher thread) -> HTTP (exchange + admin)."""

from __future__ import annotations

import time

from mockstack.common.http import Check, HealthReport, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.venue.api import VenueAPI, fault_event
from mockstack.venue.config import VenueConfig
from mockstack.venue.engine import MATCH_INTERVAL, Engine
from mockstack.venue.faults import FaultBoard, FaultKind
from mockstack.venue.ledger import Ledger
from mockstack.venue.market import PriceBook, TimeSource
from mockstack.venue.metrics import VenueMetrics

SERVICE = "venue"
MATCHER_STALE_AFTER = 20 * MATCH_INTERVAL


class VenueService:
    """Owns every part of a running venue. ``start()`` serves in threads; ``stop()`` ends them."""

    def __init__(self, config: VenueConfig, log: EventLog | None = None, clock: TimeSource = time.time) -> None:
        self.config = config
        self.log = log if log is not None else EventLog(SERVICE)
        self.ledger = Ledger(config.state_db)
        genesis = self.ledger.genesis(int(clock()) - config.history_seconds)
        self.ledger.seed_balances(dict(config.balances))
        self.book = PriceBook(config.markets, config.seed, config.volatility, genesis, self.ledger.shocks(), clock)
        self.metrics = VenueMetrics(tuple(m.symbol for m in config.markets))

        def gauge(kind: str, delta: int) -> None:
            self.metrics.active_faults.labels(kind=kind).inc(delta)
            if kind == FaultKind.STALE_KLINES.value:
                if delta > 0:
                    self.book.freeze()
                elif not self.faults.has(FaultKind.STALE_KLINES):
                    self.book.unfreeze()

        self.faults = FaultBoard(fault_event(self.log, gauge))
        self.engine = Engine(self.ledger, self.book, self.metrics, self.log)
        self.http = ServiceHTTP(SERVICE, config.host, config.http_port, self.metrics.registry, self.health)
        VenueAPI(self.engine, self.faults, self.log).register(self.http)

    @property
    def port(self) -> int:
        return self.http.port

    def health(self) -> HealthReport:
        try:
            mode = self.ledger.ping()
            db = Check(mode == "wal", f"{self.config.state_db} (journal_mode={mode})")
        except Exception as exc:  # any failure of the DB is what this check reports
            db = Check(False, f"{self.config.state_db}: {exc}")
        age = time.monotonic() - self.engine.last_match
        matcher = Check(age < MATCHER_STALE_AFTER, f"last matching pass {age:.1f} s ago")
        return HealthReport(live=True, checks={"state_db": db, "matcher": matcher})

    def start(self) -> None:
        self.book.price(next(iter(self.book.markets)))  # build the price history before serving
        for symbol in self.book.markets:
            self.book.price(symbol)
        self.engine.start()
        self.http.start()
        self.log.info(
            "venue_started",
            f"Venue ready on http://{self.config.host}:{self.port} (markets "
            f"{', '.join(self.book.markets)}; state {self.config.state_db})",
            host=self.config.host,
            http_port=self.port,
            state_db=str(self.config.state_db),
            markets=list(self.book.markets),
        )

    def stop(self) -> None:
        self.http.stop()
        self.engine.stop()
        self.ledger.close()
        self.log.info("venue_stopped", "Venue stopped cleanly")

"""Wiring and lifecycle: state DB -> engine -> order listener -> admin HTTP; stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import random
import signal

from mockstack.broker.admin import AdminAPI
from mockstack.broker.config import BrokerConfig
from mockstack.broker.engine import Engine, Settings
from mockstack.broker.metrics import BrokerMetrics
from mockstack.broker.server import OrderServer
from mockstack.broker.store import Store
from mockstack.common.http import Check, HealthReport, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.common.universe import build_universe

SERVICE = "broker"


class BrokerService:
    """Owns every part of a running broker. ``run()`` blocks until ``request_stop()`` or a signal."""

    def __init__(self, config: BrokerConfig, log: EventLog | None = None) -> None:
        self.config = config
        self.log = log if log is not None else EventLog(SERVICE)
        self.universe = build_universe(config.seed, config.symbols)
        symbols = tuple(i.symbol for i in self.universe)
        self.store = Store(config.state_db)
        self.metrics = BrokerMetrics(symbols)
        self.engine = Engine(
            self.store,
            symbols,
            Settings(
                reject_rate=config.reject_rate,
                fill_latency_ms=config.fill_latency_ms,
                cancel_on_disconnect=config.cancel_on_disconnect,
                partial_fill_ratio=config.partial_fill_ratio,
                max_order_qty=config.max_order_qty,
                max_orders_per_second=config.max_orders_per_second,
            ),
            metrics=self.metrics,
            log=self.log,
            rng=random.Random(config.seed),
        )
        self.orders = OrderServer(self.engine, self.log, config.host, config.order_port, config.heartbeat_interval)
        self.http: ServiceHTTP | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def health(self) -> HealthReport:
        listening = self.orders.listening
        try:
            mode = self.store.ping()
            db = Check(mode == "wal", f"{self.config.state_db} (journal_mode={mode})")
        except Exception as exc:  # any failure of the DB is what this check reports
            db = Check(False, f"{self.config.state_db}: {exc}")
        return HealthReport(
            live=True,
            checks={
                "order_listener": Check(
                    listening,
                    f"listening on {self.config.host}:{self.orders.bound_port}" if listening else "not listening",
                ),
                "state_db": db,
            },
        )

    def request_stop(self) -> None:
        """Thread-safe: ask ``run()`` to return."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self.orders.start()
            self.http = ServiceHTTP(
                SERVICE, self.config.host, self.config.http_port, self.metrics.registry, self.health
            )
            AdminAPI(self.engine, self.universe).register(self.http)
            self.http.start()
            self.log.info(
                "broker_started",
                f"Broker ready: orders on {self.config.host}:{self.orders.bound_port}, "
                f"admin on http://{self.config.host}:{self.http.port}",
                order_port=self.orders.bound_port,
                http_port=self.http.port,
                state_db=str(self.config.state_db),
                symbols=list(self.engine.symbols),
            )
            await self._stop.wait()
        finally:
            await self._shutdown()

    def _on_signal(self, sig: signal.Signals) -> None:
        self.log.info("broker_stopping", f"Received {sig.name}; stopping", signal=sig.name)
        assert self._stop is not None
        self._stop.set()

    async def _shutdown(self) -> None:
        started = self.http is not None
        await self.orders.stop()
        if self.http is not None:
            self.http.stop()
        self.store.close()
        if started:
            self.log.info("broker_stopped", "Broker stopped cleanly")

"""Prometheus metrics of the marketdata service (names fixed by ``docs/stack-contract.md``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from mockstack.marketdata.faults import FaultKind


class MarketdataMetrics:
    """``marketdata_bars_published_total``, ``marketdata_last_bar_timestamp_seconds``,
    ``marketdata_active_faults{kind}``, ``marketdata_requests_total{endpoint,status}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.bars_published = Counter(
            "marketdata_bars_published_total", "M5 bars published (withheld stale bars excluded)", registry=registry
        )
        self.last_bar_timestamp = Gauge(
            "marketdata_last_bar_timestamp_seconds",
            "Simulated unix timestamp of the latest published bar",
            registry=registry,
        )
        self.active_faults = Gauge(
            "marketdata_active_faults", "Faults added and not yet cleared, by kind", ["kind"], registry=registry
        )
        self.requests = Counter(
            "marketdata_requests_total", "HTTP requests answered", ["endpoint", "status"], registry=registry
        )
        for kind in FaultKind:
            self.active_faults.labels(kind=kind.value).set(0)

    def observe_published(self, new_bars: int, last_timestamp: int | None) -> None:
        self.bars_published.inc(new_bars)
        if last_timestamp is not None:
            self.last_bar_timestamp.set(last_timestamp)

    def observe_request(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

"""Prometheus metrics of the venue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from mockstack.venue.faults import FaultKind


class VenueMetrics:
    """``venue_requests_total{endpoint,status}``, ``venue_orders_total{outcome}``, ``venue_fills_total``,
    ``venue_duplicate_client_order_ids_total``, ``venue_lost_acks_total``, ``venue_requests_refused_total{status}``,
    ``venue_active_faults{kind}``, ``venue_price{symbol}``."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "venue_requests_total", "Exchange API requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.orders = Counter("venue_orders_total", "Orders by outcome", ["outcome"], registry=self.registry)
        self.fills = Counter("venue_fills_total", "Fills executed", registry=self.registry)
        self.duplicate_client_ids = Counter(
            "venue_duplicate_client_order_ids_total",
            "New-order requests whose clientOrderId already existed (answered with the original order)",
            registry=self.registry,
        )
        self.lost_acks = Counter(
            "venue_lost_acks_total", "Orders executed whose reply was dropped (lost_ack fault)", registry=self.registry
        )
        self.refused = Counter(
            "venue_requests_refused_total",
            "Exchange requests refused by a ban or error fault, by status",
            ["status"],
            registry=self.registry,
        )
        self.active_faults = Gauge("venue_active_faults", "Active faults by kind", ["kind"], registry=self.registry)
        self.price = Gauge("venue_price", "Walk price (mid) at the last scrape", ["symbol"], registry=self.registry)
        for kind in FaultKind:
            self.active_faults.labels(kind=kind.value).set(0)
        for symbol in symbols:
            self.price.labels(symbol=symbol).set(0)

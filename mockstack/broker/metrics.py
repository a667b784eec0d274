"""The broker's Prometheus metrics (names are part of the stack contract) in their own registry."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mockstack.broker.model import RejectReason

ACK_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class BrokerMetrics:
    def __init__(self, symbols: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge(
            "broker_sessions_active", "Order sessions that said hello and are connected", registry=r
        )
        self.orders_received = Counter(
            "broker_orders_received_total", "place messages by outcome", ["result"], registry=r
        )
        self.rejects = Counter("broker_rejects_total", "Rejected place messages by reason", ["reason"], registry=r)
        self.fills = Counter("broker_fills_total", "Fills executed (partial and final)", registry=r)
        self.ack_latency = Histogram(
            "broker_ack_latency_seconds",
            "Time from receiving a place line to writing its ack/reject",
            buckets=ACK_LATENCY_BUCKETS,
            registry=r,
        )
        self.reject_rate = Gauge("broker_reject_rate", "Configured random reject probability (0..1)", registry=r)
        self.fill_latency = Gauge(
            "broker_fill_latency_seconds", "Configured simulated latency before each fill", registry=r
        )
        self.position = Gauge(
            "broker_position", "Broker-side net position (fills + injections)", ["symbol"], registry=r
        )
        for result in ("accepted", "rejected", "duplicate"):
            self.orders_received.labels(result=result)
        for reason in RejectReason:
            self.rejects.labels(reason=reason.value)
        for symbol in symbols:
            self.position.labels(symbol=symbol).set(0)

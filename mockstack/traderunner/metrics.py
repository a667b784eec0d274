"""traderunner's Prometheus metrics, with the exact names of the stack contract, in one registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MODES = ("lab", "paper", "live")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.kill_switch_active = Gauge(
            "traderunner_kill_switch_active", "1 while the kill switch is active", registry=r
        )
        self.kill_switch_trips = Counter("traderunner_kill_switch_trips", "Kill switch trips", registry=r)
        self.broker_connected = Gauge("traderunner_broker_connected", "1 while the broker session is up", registry=r)
        self.manual_intervention = Gauge(
            "traderunner_broker_manual_intervention_required",
            "1 after all reconnect attempts failed",
            registry=r,
        )
        self.reconnect_attempts = Counter(
            "traderunner_broker_reconnect_attempts", "Broker reconnect attempts", registry=r
        )
        self.orders_sent = Counter("traderunner_orders_sent", "Orders sent to the broker", registry=r)
        self.order_acks = Counter("traderunner_order_acks", "Order acks received", registry=r)
        self.order_rejects = Counter(
            "traderunner_order_rejects", "Order rejects (broker or risk)", ["reason"], registry=r
        )
        self.fills = Counter("traderunner_fills", "Fills applied", registry=r)
        self.order_latency = Histogram(
            "traderunner_order_latency_seconds",
            "Send to ack latency",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.daily_pnl = Gauge("traderunner_daily_pnl", "Daily P&L (realized + unrealized)", registry=r)
        self.position = Gauge("traderunner_position", "Position per symbol (own fills)", ["symbol"], registry=r)
        self.mismatch_symbols = Gauge(
            "traderunner_position_mismatch_symbols", "Symbols whose position differs from the broker's", registry=r
        )
        self.data_sla_ok = Gauge("traderunner_data_sla_ok", "1 while the data SLA holds", registry=r)
        self.data_violations = Counter("traderunner_data_violations", "Data quality violations", ["kind"], registry=r)
        self.bars_processed = Counter("traderunner_bars_processed", "Valid bars processed", registry=r)
        self.loop_duration = Histogram(
            "traderunner_loop_duration_seconds",
            "Main loop iteration duration",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.mode = Gauge("traderunner_mode", "1 for the current mode", ["mode"], registry=r)
        self.last_order_ts = Gauge(
            "traderunner_last_order_timestamp_seconds", "Unix time of the last order sent", registry=r
        )
        self.broker_connected.set(0)
        self.data_sla_ok.set(1)

    def set_mode(self, mode: str) -> None:
        for m in MODES:
            self.mode.labels(mode=m).set(1 if m == mode else 0)

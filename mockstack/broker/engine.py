"""Order handling: reject rules, idempotency, the rate limit, fills, cancels, positions.

The engine is synchronous and thread-safe (one lock): the asyncio order server and the admin HTTP
thread both call it. Time (for the rate limit) and randomness (for the reject rate) are injected so
unit tests need neither sleeping nor luck. Scheduling *when* fills happen is the server's job; the
engine only says what the next fill of an order is and records it.

Order of checks for a ``place`` (first match wins):

1. field validation (``invalid_order``; done by :mod:`protocol`, not remembered by key),
2. idempotency: a key seen before returns the original ack (``duplicate: true``) or reject,
3. ``rate_limit`` (more than ``max_orders_per_second`` new orders in the last second, all sessions),
4. ``unknown_symbol``, 5. ``size_limit``, 6. ``random_reject`` (probability ``reject_rate``),
7. accepted.

Rejects from steps 3-6 are stored under their key, so repeating the key repeats the reject.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mockstack.broker.metrics import BrokerMetrics
from mockstack.broker.model import FillRecord, Order, RejectReason, next_fill_qty
from mockstack.broker.protocol import (
    ACCEPTED,
    Ack,
    Cancelled,
    CancelReject,
    InvalidOrder,
    PlaceOrder,
    Reject,
)
from mockstack.broker.store import ConflictError, Store
from mockstack.common.logging import EventLog

Clock = Callable[[], float]


@dataclass
class Settings:
    """Values the admin API may change at run time (guarded by the engine lock)."""

    reject_rate: float = 0.0
    fill_latency_ms: float = 50.0
    cancel_on_disconnect: bool = True
    partial_fill_ratio: float = 0.5
    max_order_qty: int = 1000
    max_orders_per_second: int = 50


@dataclass(frozen=True)
class SessionRef:
    session_id: str
    client_id: str


@dataclass(frozen=True)
class PlaceOutcome:
    answer: Ack | Reject
    new_order: Order | None  # set only when this call created an order (the server schedules its fills)

    @property
    def result(self) -> str:
        if isinstance(self.answer, Ack):
            return "duplicate" if self.answer.duplicate else "accepted"
        return "duplicate" if self.answer.duplicate else "rejected"


class RateLimiter:
    """At most ``limit`` admissions in any sliding window of ``window`` seconds of ``clock``."""

    def __init__(self, limit: int, clock: Clock, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._admitted: deque[float] = deque()

    def try_acquire(self) -> bool:
        now = self._clock()
        while self._admitted and now - self._admitted[0] >= self.window:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            return False
        self._admitted.append(now)
        return True


class Engine:
    def __init__(
        self,
        store: Store,
        symbols: Iterable[str],
        settings: Settings,
        *,
        metrics: BrokerMetrics | None = None,
        log: EventLog | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.symbols = tuple(symbols)
        self._known = frozenset(self.symbols)
        self._settings = settings
        self._lock = threading.RLock()
        self.metrics = metrics if metrics is not None else BrokerMetrics(self.symbols)
        self.log = log
        self._rng = rng if rng is not None else random.Random()
        self._limiter = RateLimiter(settings.max_orders_per_second, clock)
        self._traded = store.traded_positions()
        self._adjusted = store.adjustments()
        self.metrics.reject_rate.set(settings.reject_rate)
        self.metrics.fill_latency.set(settings.fill_latency_ms / 1000.0)
        for symbol in set(self._traded) | set(self._adjusted):
            self._publish_position(symbol)

    # ----------------------------------------------------------------------- settings

    @property
    def fill_latency_s(self) -> float:
        with self._lock:
            return self._settings.fill_latency_ms / 1000.0

    @property
    def reject_rate(self) -> float:
        with self._lock:
            return self._settings.reject_rate

    @property
    def cancel_on_disconnect(self) -> bool:
        with self._lock:
            return self._settings.cancel_on_disconnect

    def set_reject_rate(self, rate: float) -> float:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"reject rate must be between 0 and 1, got {rate}")
        with self._lock:
            previous, self._settings.reject_rate = self._settings.reject_rate, rate
        self.metrics.reject_rate.set(rate)
        self._log("reject_rate_changed", f"Reject rate changed from {previous} to {rate}", rate=rate, previous=previous)
        return previous

    def set_fill_latency_ms(self, ms: float) -> float:
        if ms < 0:
            raise ValueError(f"fill latency must be >= 0 ms, got {ms}")
        with self._lock:
            previous, self._settings.fill_latency_ms = self._settings.fill_latency_ms, ms
        self.metrics.fill_latency.set(ms / 1000.0)
        self._log(
            "fill_latency_changed", f"Fill latency changed from {previous} ms to {ms} ms", ms=ms, previous=previous
        )
        return previous

    def set_cancel_on_disconnect(self, enabled: bool) -> bool:
        with self._lock:
            previous, self._settings.cancel_on_disconnect = self._settings.cancel_on_disconnect, enabled
        self._log(
            "cancel_on_disconnect_changed",
            f"Cancel-on-disconnect {'enabled' if enabled else 'disabled'}",
            enabled=enabled,
            previous=previous,
        )
        return previous

    # ----------------------------------------------------------------------- orders

    def place(self, session: SessionRef, msg: PlaceOrder) -> PlaceOutcome:
        with self._lock:
            outcome = self._place(session, msg)
        self.metrics.orders_received.labels(result=outcome.result).inc()
        answer = outcome.answer
        if isinstance(answer, Reject) and not answer.duplicate:
            self.metrics.rejects.labels(reason=answer.reason).inc()
        return outcome

    def _place(self, session: SessionRef, msg: PlaceOrder) -> PlaceOutcome:
        key = msg.idempotency_key
        original = self.store.order_by_key(key)
        if original is not None:
            conflict = (original.symbol, original.side, original.qty) != (msg.symbol, msg.side, msg.qty)
            self._log(
                "order_duplicate",
                f"Duplicate idempotency key {key}: answering the original ack of {original.order_id}",
                level="WARNING",
                idempotency_key=key,
                order_id=original.order_id,
                session_id=session.session_id,
                differs_from_original=conflict,
            )
            return PlaceOutcome(Ack(original.order_id, key, ACCEPTED, True), None)
        stored = self.store.reject_by_key(key)
        if stored is not None:
            self._log(
                "order_duplicate",
                f"Duplicate idempotency key {key}: answering the original reject ({stored.reason.value})",
                level="WARNING",
                idempotency_key=key,
                reason=stored.reason.value,
                session_id=session.session_id,
            )
            return PlaceOutcome(Reject(key, stored.reason.value, stored.detail, duplicate=True), None)

        verdict = self._verdict(msg)
        if verdict is not None:
            reason, detail = verdict
            self.store.insert_reject(
                idempotency_key=key,
                reason=reason,
                detail=detail,
                client_id=session.client_id,
                session_id=session.session_id,
            )
            self._log(
                "order_rejected",
                f"Order {key} rejected: {reason.value} ({detail})",
                level="WARNING",
                idempotency_key=key,
                reason=reason.value,
                detail=detail,
                session_id=session.session_id,
            )
            return PlaceOutcome(Reject(key, reason.value, detail), None)

        order = self.store.insert_order(
            idempotency_key=key,
            client_id=session.client_id,
            session_id=session.session_id,
            symbol=msg.symbol,
            side=msg.side,
            qty=msg.qty,
            limit_price=msg.limit_price,
        )
        self._log(
            "order_accepted",
            f"Order {order.order_id} accepted: {msg.side.value} {msg.qty} {msg.symbol} @ {msg.limit_price}",
            order_id=order.order_id,
            idempotency_key=key,
            symbol=msg.symbol,
            side=msg.side.value,
            qty=msg.qty,
            limit_price=msg.limit_price,
            session_id=session.session_id,
        )
        return PlaceOutcome(Ack(order.order_id, key, ACCEPTED, False), order)

    def _verdict(self, msg: PlaceOrder) -> tuple[RejectReason, str] | None:
        s = self._settings
        if not self._limiter.try_acquire():
            return RejectReason.RATE_LIMIT, f"more than {s.max_orders_per_second} orders per second"
        if msg.symbol not in self._known:
            return RejectReason.UNKNOWN_SYMBOL, f"symbol {msg.symbol!r} is not traded here"
        if msg.qty > s.max_order_qty:
            return RejectReason.SIZE_LIMIT, f"qty {msg.qty} exceeds the max order qty {s.max_order_qty}"
        if s.reject_rate > 0.0 and self._rng.random() < s.reject_rate:
            return RejectReason.RANDOM_REJECT, f"rejected by the broker (reject rate {s.reject_rate})"
        return None

    def invalid(self, session: SessionRef, exc: InvalidOrder) -> Reject:
        """The answer to a ``place`` with a bad field (not stored: the message never became an order)."""
        self.metrics.orders_received.labels(result="rejected").inc()
        self.metrics.rejects.labels(reason=RejectReason.INVALID_ORDER.value).inc()
        self._log(
            "order_rejected",
            f"Order rejected: invalid_order ({exc.detail})",
            level="WARNING",
            idempotency_key=exc.idempotency_key,
            reason=RejectReason.INVALID_ORDER.value,
            field=exc.field_name,
            session_id=session.session_id,
        )
        return Reject(exc.idempotency_key, RejectReason.INVALID_ORDER.value, exc.detail, field=exc.field_name)

    def fill_next(self, order_id: str) -> FillRecord | None:
        """Execute the next (partial or final) fill of a working order; None if nothing is left to fill."""
        with self._lock:
            order = self.store.order(order_id)
            if order is None or not order.status.working:
                return None
            qty = next_fill_qty(order.qty, order.filled_qty, self._settings.partial_fill_ratio)
            if qty <= 0:
                return None
            try:
                fill = self.store.record_fill(order_id, order.filled_qty, qty)
            except ConflictError:
                return None
            self._traded[fill.symbol] = self._traded.get(fill.symbol, 0) + fill.side.sign * fill.qty
            self._publish_position(fill.symbol)
        self.metrics.fills.inc()
        self._log(
            "order_fill",
            f"Order {order_id} {fill.status.value}: {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} "
            f"({fill.cum_qty}/{fill.cum_qty + fill.leaves_qty})",
            order_id=order_id,
            fill_id=fill.fill_id,
            symbol=fill.symbol,
            qty=fill.qty,
            cum_qty=fill.cum_qty,
            leaves_qty=fill.leaves_qty,
            status=fill.status.value,
        )
        return fill

    def cancel(self, order_id: str, reason: str = "client") -> Cancelled | CancelReject:
        with self._lock:
            order = self.store.order(order_id)
            if order is None:
                return CancelReject(order_id, "unknown_order", f"no order {order_id}")
            if not order.status.working:
                return CancelReject(order_id, "not_working", f"order {order_id} is {order.status.value}")
            try:
                cancelled = self.store.cancel_order(order_id)
            except ConflictError as exc:
                return CancelReject(order_id, "not_working", str(exc))
        self._log(
            "order_cancelled",
            f"Order {order_id} cancelled ({reason}) with {cancelled.qty - cancelled.filled_qty} unfilled",
            order_id=order_id,
            idempotency_key=cancelled.idempotency_key,
            reason=reason,
            session_id=cancelled.session_id,
        )
        return Cancelled(order_id, cancelled.idempotency_key, reason, cancelled.qty - cancelled.filled_qty)

    def cancel_session_orders(self, session_id: str) -> list[tuple[Order, Cancelled]]:
        """Cancel every working order placed by ``session_id`` (cancel-on-disconnect)."""
        out: list[tuple[Order, Cancelled]] = []
        with self._lock:
            for order in self.store.working_orders(session_id):
                answer = self.cancel(order.order_id, reason="disconnect")
                if isinstance(answer, Cancelled):
                    out.append((order, answer))
        return out

    def working_orders(self) -> list[Order]:
        return self.store.working_orders()

    def orders(self) -> list[Order]:
        return self.store.orders()

    def fills(self, order_id: str | None = None) -> list[FillRecord]:
        return self.store.fills(order_id)

    # ----------------------------------------------------------------------- positions

    def positions(self) -> dict[str, int]:
        """Net quantity per symbol (fills + injections), flat symbols left out."""
        with self._lock:
            symbols = sorted(set(self._traded) | set(self._adjusted))
            out = {s: self._traded.get(s, 0) + self._adjusted.get(s, 0) for s in symbols}
        return {s: q for s, q in out.items() if q != 0}

    def inject_position(self, symbol: str, qty: int) -> dict[str, int]:
        if symbol not in self._known:
            raise ValueError(f"symbol {symbol!r} is not traded here; known: {', '.join(self.symbols)}")
        if qty == 0:
            raise ValueError("qty must be a non-zero integer")
        with self._lock:
            self.store.add_adjustment(symbol, qty)
            self._adjusted[symbol] = self._adjusted.get(symbol, 0) + qty
            self._publish_position(symbol)
        self._log(
            "position_injected",
            f"Injected an order-less position of {qty} {symbol}",
            level="WARNING",
            symbol=symbol,
            qty=qty,
        )
        return self.positions()

    def remove_injection(self, symbol: str) -> bool:
        """Undo every injection of ``symbol``; False when there was none."""
        with self._lock:
            removed = self.store.remove_adjustments(symbol)
            if removed == 0:
                return False
            self._adjusted.pop(symbol, None)
            self._publish_position(symbol)
        self._log("position_injection_removed", f"Removed the injected position of {symbol}", symbol=symbol)
        return True

    def _publish_position(self, symbol: str) -> None:
        self.metrics.position.labels(symbol=symbol).set(self._traded.get(symbol, 0) + self._adjusted.get(symbol, 0))

    def _log(self, event: str, msg: str, level: str = "INFO", **fields: object) -> None:
        if self.log is not None:
            self.log.log(event, msg, level, **fields)

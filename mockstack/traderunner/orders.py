"""Order manager: persist first, send second, and make every broker answer idempotent.

Lifecycle: ``sent`` (row committed with its ``idempotency_key`` *before* the socket write; the
orders CSV row is appended once, right then) -> ``acked`` -> ``partially_filled`` -> ``filled``, or
``rejected`` / ``cancelled``. After a restart or reconnect, :meth:`OrderManager.resend_unacked`
re-sends every order still ``sent`` with the *same* key: the broker answers the original ack
(``duplicate: true``) and never creates or fills a second order. :meth:`OrderManager.sync` then
reads the broker's ``orders`` snapshot to catch fills and cancels that happened while we were away.
Fills are applied by cumulative quantity (see :meth:`Store.apply_fill`), so a fill seen twice (live
message and snapshot) is counted once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mockstack.common.logging import EventLog
from mockstack.traderunner import exports
from mockstack.traderunner.metrics import Metrics
from mockstack.traderunner.store import UNACKED, WORKING, OrderRecord, Store
from mockstack.traderunner.strategy import OrderIntent


class Sender(Protocol):
    def send(self, msg: dict[str, Any]) -> bool: ...


def new_key() -> str:
    return f"tr-{uuid.uuid4().hex}"


class OrderManager:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        log: EventLog,
        metrics: Metrics,
        workdir: Path,
        *,
        clock: Callable[[], float] = time.time,
        key_factory: Callable[[], str] = new_key,
    ) -> None:
        self.store = store
        self.sender = sender
        self.log = log
        self.metrics = metrics
        self.workdir = workdir
        self.clock = clock
        self.key_factory = key_factory
        self.lock = threading.RLock()
        self._sent_mono: dict[str, float] = {}

    # --- sending --------------------------------------------------------------------------------
    def _place_msg(self, rec: OrderRecord) -> dict[str, Any]:
        return {
            "type": "place",
            "idempotency_key": rec.idempotency_key,
            "symbol": rec.symbol,
            "side": rec.side,
            "qty": rec.qty,
            "limit_price": rec.limit_price,
        }

    def _journal(self, rec: OrderRecord) -> None:
        when = datetime.fromtimestamp(rec.created_at, UTC)
        exports.append_order_row(
            self.workdir,
            {
                "ts": when.isoformat(timespec="milliseconds"),
                "order_id": f"TR-{rec.local_id}",
                "idempotency_key": rec.idempotency_key,
                "symbol": rec.symbol,
                "side": rec.side,
                "qty": rec.qty,
                "limit_price": rec.limit_price,
                "status": "sent",
            },
            when,
        )

    def repair_journal(self) -> int:
        """Append the CSV rows a crash lost between the store insert and the CSV append.

        The store is the source of truth; the orders CSV is its journal export. Run at start-up,
        before anything is sent, so every order the store knows is in the journal exactly once.
        """
        with self.lock:
            known = exports.csv_keys(self.workdir)
            missing = [r for r in self.store.orders() if known[r.idempotency_key] == 0]
            for rec in missing:
                self._journal(rec)
                self.log.warning(
                    "journal_repaired",
                    f"Order {rec.idempotency_key} was in the store but not in the orders journal; row restored",
                    idempotency_key=rec.idempotency_key,
                )
            return len(missing)

    def place(self, intent: OrderIntent) -> OrderRecord:
        """Persist the order (key first), append its CSV row, then send it."""
        with self.lock:
            now = self.clock()
            rec = self.store.insert_order(
                self.key_factory(), intent.symbol, intent.side, intent.qty, intent.limit_price, now
            )
            self._journal(rec)
            self._sent_mono[rec.idempotency_key] = time.monotonic()
            sent = self.sender.send(self._place_msg(rec))
            self.metrics.orders_sent.inc()
            self.metrics.last_order_ts.set(now)
            self.log.info(
                "order_sent",
                f"Order sent: {rec.side} {rec.qty} {rec.symbol} @ {rec.limit_price} ({intent.reason})",
                idempotency_key=rec.idempotency_key,
                symbol=rec.symbol,
                side=rec.side,
                qty=rec.qty,
                limit_price=rec.limit_price,
                delivered=sent,
            )
            return rec

    def resend_unacked(self) -> int:
        """Re-send every order that was sent but never acknowledged, with its original key."""
        with self.lock:
            pending = self.store.orders(UNACKED)
            for rec in pending:
                self._sent_mono.setdefault(rec.idempotency_key, time.monotonic())
                ok = self.sender.send(self._place_msg(rec))
                self.log.info(
                    "order_resent",
                    f"Order re-sent with its original key {rec.idempotency_key}",
                    idempotency_key=rec.idempotency_key,
                    delivered=ok,
                )
            return len(pending)

    def cancel_working(self) -> int:
        """Ask the broker to cancel every acknowledged, not fully filled order."""
        with self.lock:
            count = 0
            for rec in self.store.orders(WORKING):
                if rec.broker_order_id and self.sender.send({"type": "cancel", "order_id": rec.broker_order_id}):
                    count += 1
            return count

    # --- queries --------------------------------------------------------------------------------
    def in_flight(self) -> dict[str, int]:
        """Signed quantity not yet filled per symbol, over unacked and working orders."""
        out: dict[str, int] = {}
        for rec in self.store.orders(UNACKED + WORKING):
            out[rec.symbol] = out.get(rec.symbol, 0) + rec.signed_leaves
        return out

    # --- broker messages ------------------------------------------------------------------------
    def on_message(self, msg: dict[str, Any], kill_active: Callable[[], bool]) -> None:
        kind = msg.get("type")
        with self.lock:
            if kind == "ack":
                self._on_ack(msg, kill_active())
            elif kind == "reject":
                self._on_reject(msg)
            elif kind == "fill":
                self._on_fill(msg)
            elif kind == "cancelled":
                key = msg.get("idempotency_key")
                rec = self.store.order(str(key)) if key else self.store.order_by_broker_id(str(msg.get("order_id")))
                if rec is not None:
                    self.store.mark_cancelled(rec.idempotency_key)
                    self.log.info(
                        "order_cancelled",
                        f"Order {rec.idempotency_key} cancelled by the broker",
                        idempotency_key=rec.idempotency_key,
                        order_id=msg.get("order_id"),
                    )
            elif kind == "error":
                self.log.warning("broker_error", f"Broker error: {msg.get('code')}: {msg.get('detail')}")

    def _on_ack(self, msg: dict[str, Any], kill_active: bool) -> None:
        key = str(msg.get("idempotency_key"))
        rec = self.store.mark_acked(key, str(msg.get("order_id")), self.clock())
        if rec is None:
            self.log.warning("unknown_ack", f"Ack for an unknown idempotency key {key}", message=msg)
            return
        started = self._sent_mono.pop(key, None)
        if started is not None:
            self.metrics.order_latency.observe(time.monotonic() - started)
        self.metrics.order_acks.inc()
        if kill_active and rec.status in WORKING and rec.broker_order_id:
            self.sender.send({"type": "cancel", "order_id": rec.broker_order_id})

    def _on_reject(self, msg: dict[str, Any]) -> None:
        reason = str(msg.get("reason", "unknown"))
        key = msg.get("idempotency_key")
        if not key:  # a reject of a cancel request
            self.log.info("cancel_rejected", f"Cancel of {msg.get('order_id')} rejected: {reason}")
            return
        self._sent_mono.pop(str(key), None)
        rec = self.store.mark_rejected(str(key), reason)
        self.metrics.order_rejects.labels(reason=reason).inc()
        self.log.warning(
            "order_rejected",
            f"Order {key} rejected by the broker: {reason} {msg.get('detail') or ''}".strip(),
            idempotency_key=key,
            reason=reason,
            symbol=rec.symbol if rec else None,
        )

    def _on_fill(self, msg: dict[str, Any]) -> None:
        key = str(msg.get("idempotency_key"))
        rec = self.store.order(key)
        if rec is None:
            self.log.warning("unknown_fill", f"Fill for an unknown idempotency key {key}", message=msg)
            return
        qty = int(msg.get("qty") or 0)
        cum = msg.get("cum_qty")
        cum_qty = int(cum) if isinstance(cum, int | float) else rec.filled_qty + qty
        result = self.store.apply_fill(
            key,
            str(msg.get("fill_id") or f"{key}-{cum_qty}"),
            str(msg.get("order_id")),
            cum_qty,
            float(msg.get("price") or rec.limit_price),
            self.clock(),
        )
        if result.applied_qty:
            self.metrics.fills.inc()
            self.log.info(
                "fill",
                f"Fill {rec.side} {result.applied_qty} {rec.symbol} @ {msg.get('price')}",
                idempotency_key=key,
                qty=result.applied_qty,
                cum_qty=cum_qty,
            )

    def sync(self, broker_orders: list[dict[str, Any]]) -> dict[str, int]:
        """Adopt acks, fills and cancels the broker has for our keys (after a (re)connect)."""
        stats = {"acked": 0, "filled_units": 0, "cancelled": 0, "unknown": 0}
        with self.lock:
            for bo in broker_orders:
                key = str(bo.get("idempotency_key"))
                rec = self.store.order(key)
                if rec is None:
                    stats["unknown"] += 1
                    continue
                order_id = str(bo.get("order_id"))
                if rec.status in UNACKED:
                    self.store.mark_acked(key, order_id, self.clock())
                    stats["acked"] += 1
                filled = int(bo.get("filled_qty") or 0)
                if filled > rec.filled_qty:
                    result = self.store.apply_fill(
                        key, f"sync-{order_id}-{filled}", order_id, filled, rec.limit_price, self.clock()
                    )
                    stats["filled_units"] += result.applied_qty
                    if result.applied_qty:
                        self.metrics.fills.inc()
                if str(bo.get("status")) in ("cancelled", "rejected") and rec.status not in (
                    "filled",
                    "cancelled",
                    "rejected",
                ):
                    if str(bo.get("status")) == "cancelled":
                        self.store.mark_cancelled(key)
                        stats["cancelled"] += 1
                    else:
                        self.store.mark_rejected(key, "broker")
        if any(stats.values()):
            self.log.info("orders_synced", f"Order state synced with the broker: {stats}", **stats)
        return stats

"""Order manager: key persisted before sending, resend after restart with the same key, no double fill."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mockstack.common.logging import EventLog
from mockstack.traderunner import exports
from mockstack.traderunner.config import StrategyConfig
from mockstack.traderunner.metrics import Metrics
from mockstack.traderunner.orders import OrderManager
from mockstack.traderunner.store import Store
from mockstack.traderunner.strategy import OrderIntent, Strategy


class FakeSender:
    def __init__(self, store: Store | None = None, up: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.up = up
        self.store = store
        self.keys_in_store_at_send: list[bool] = []

    def send(self, msg: dict[str, Any]) -> bool:
        if msg.get("type") == "place" and self.store is not None:
            self.keys_in_store_at_send.append(self.store.order(msg["idempotency_key"]) is not None)
        if not self.up:
            return False
        self.sent.append(msg)
        return True


def manager(tmp_path: Path, sender: FakeSender, store: Store) -> OrderManager:
    keys = iter(f"key-{i}" for i in range(1, 100))
    return OrderManager(
        store,
        sender,
        EventLog("traderunner", stream=io.StringIO()),
        Metrics(),
        tmp_path,
        clock=lambda: 1_767_600_000.0,
        key_factory=lambda: next(keys),
    )


INTENT = OrderIntent("ABC", "buy", 10, 100.0, "base position")


def test_key_is_persisted_before_the_order_is_sent_and_csv_row_written_once(tmp_path: Path) -> None:
    store = Store.open_in(tmp_path)
    sender = FakeSender(store)
    om = manager(tmp_path, sender, store)
    rec = om.place(INTENT)
    assert sender.keys_in_store_at_send == [True]
    assert sender.sent[0] == {
        "type": "place",
        "idempotency_key": "key-1",
        "symbol": "ABC",
        "side": "buy",
        "qty": 10,
        "limit_price": 100.0,
    }
    assert rec.status == "sent"
    assert exports.csv_keys(tmp_path) == {"key-1": 1}


def test_unacked_orders_are_resent_with_the_same_key_after_a_restart(tmp_path: Path) -> None:
    store = Store.open_in(tmp_path)
    om = manager(tmp_path, FakeSender(store, up=False), store)  # broker link died right at send
    om.place(INTENT)
    store.close()
    # restart: a new process, same database
    store2 = Store.open_in(tmp_path)
    sender2 = FakeSender(store2)
    om2 = manager(tmp_path, sender2, store2)
    assert om2.resend_unacked() == 1
    assert [m["idempotency_key"] for m in sender2.sent] == ["key-1"]
    # the broker answers the original ack (duplicate) and the fill: applied once
    om2.on_message(
        {"type": "ack", "order_id": "O-1", "idempotency_key": "key-1", "status": "accepted", "duplicate": True},
        lambda: False,
    )
    assert om2.resend_unacked() == 0  # acknowledged orders are never re-sent
    fill = {
        "type": "fill",
        "order_id": "O-1",
        "idempotency_key": "key-1",
        "fill_id": "F-1",
        "symbol": "ABC",
        "side": "buy",
        "qty": 10,
        "price": 100.0,
        "cum_qty": 10,
        "leaves_qty": 0,
        "status": "filled",
    }
    om2.on_message(fill, lambda: False)
    om2.on_message(fill, lambda: False)  # re-delivered
    assert store2.positions()["ABC"].qty == 10 and store2.fills_count() == 1
    assert exports.duplicate_keys(tmp_path) == {}  # the resend wrote no second CSV row


def test_partial_fills_apply_by_cumulative_quantity_and_sync_fills_the_rest(tmp_path: Path) -> None:
    store = Store.open_in(tmp_path)
    om = manager(tmp_path, FakeSender(store), store)
    om.place(INTENT)
    om.on_message({"type": "ack", "order_id": "O-1", "idempotency_key": "key-1"}, lambda: False)
    om.on_message(
        {
            "type": "fill",
            "order_id": "O-1",
            "idempotency_key": "key-1",
            "fill_id": "F-1",
            "qty": 5,
            "price": 100.0,
            "cum_qty": 5,
        },
        lambda: False,
    )
    assert store.order("key-1").status == "partially_filled"  # type: ignore[union-attr]
    assert om.in_flight() == {"ABC": 5}
    # we were away when the second fill came: the orders snapshot completes it, once
    snapshot = [{"order_id": "O-1", "idempotency_key": "key-1", "filled_qty": 10, "status": "filled"}]
    assert om.sync(snapshot)["filled_units"] == 5
    assert om.sync(snapshot)["filled_units"] == 0
    late = {
        "type": "fill",
        "order_id": "O-1",
        "idempotency_key": "key-1",
        "fill_id": "F-2",
        "qty": 5,
        "price": 100.0,
        "cum_qty": 10,
    }
    om.on_message(late, lambda: False)  # the live message arriving after the snapshot
    assert store.positions()["ABC"].qty == 10 and store.order("key-1").status == "filled"  # type: ignore[union-attr]


def test_ack_while_killed_cancels_the_order(tmp_path: Path) -> None:
    store = Store.open_in(tmp_path)
    sender = FakeSender(store)
    om = manager(tmp_path, sender, store)
    om.place(INTENT)
    om.on_message({"type": "ack", "order_id": "O-1", "idempotency_key": "key-1"}, lambda: True)
    assert sender.sent[-1] == {"type": "cancel", "order_id": "O-1"}
    om.on_message({"type": "cancelled", "order_id": "O-1", "idempotency_key": "key-1"}, lambda: True)
    assert store.order("key-1").status == "cancelled"  # type: ignore[union-attr]
    assert om.cancel_working() == 0


def test_reject_is_recorded_with_its_reason(tmp_path: Path) -> None:
    store = Store.open_in(tmp_path)
    metrics = Metrics()
    om = OrderManager(
        store, FakeSender(store), EventLog("t", stream=io.StringIO()), metrics, tmp_path, key_factory=lambda: "key-r"
    )
    om.place(INTENT)
    om.on_message({"type": "reject", "idempotency_key": "key-r", "reason": "size_limit"}, lambda: False)
    rec = store.order("key-r")
    assert rec is not None and rec.status == "rejected" and rec.reject_reason == "size_limit"
    assert metrics.registry.get_sample_value("traderunner_order_rejects_total", {"reason": "size_limit"}) == 1


def test_strategy_keeps_a_base_long_and_adds_on_uptrend() -> None:
    s = Strategy(StrategyConfig(base_qty=10, fast=2, slow=4))
    flat = [100.0] * 5
    intent = s.decide("ABC", flat, position=0, in_flight=0)
    assert intent is not None and (intent.side, intent.qty, intent.limit_price) == ("buy", 10, 100.0)
    assert s.decide("ABC", flat, position=10, in_flight=0) is None
    up = [100.0, 100.0, 101.0, 102.0, 103.0]
    intent = s.decide("ABC", up, position=10, in_flight=0)
    assert intent is not None and (intent.side, intent.qty) == ("buy", 2)
    assert s.decide("ABC", up, position=10, in_flight=1) is None  # one order in flight at a time
    down = [103.0, 103.0, 102.0, 101.0, 100.0]
    intent = s.decide("ABC", down, position=12, in_flight=0)
    assert intent is not None and (intent.side, intent.qty) == ("sell", 2)


def test_a_crash_between_store_insert_and_csv_append_is_repaired_at_start(tmp_path: Path) -> None:
    """kill -9 after the SQLite insert but before the CSV row: the journal is completed from the store."""
    from mockstack.traderunner import exports

    store, manager = _manager_for_repair(tmp_path)
    kept = store.insert_order("k-kept", "ABC", "buy", 5, 10.0, 1_767_600_000.0)
    manager._journal(kept)
    store.insert_order("k-lost", "ABC", "buy", 3, 10.5, 1_767_600_001.0)  # crashed before its CSV row
    assert exports.csv_keys(tmp_path) == {"k-kept": 1}
    assert manager.repair_journal() == 1
    assert exports.csv_keys(tmp_path) == {"k-kept": 1, "k-lost": 1}
    assert manager.repair_journal() == 0


def _manager_for_repair(tmp_path: Path) -> tuple[Store, OrderManager]:
    store = Store(tmp_path / "state.sqlite3")
    return store, manager(tmp_path, FakeSender(store), store)

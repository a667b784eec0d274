"""The broker engine: idempotency, rejects, the rate limit, fills, cancels, positions (no network, no sleeping)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mockstack.broker.engine import Engine, RateLimiter, SessionRef, Settings
from mockstack.broker.model import OrderStatus, Side
from mockstack.broker.protocol import Ack, Cancelled, CancelReject, InvalidOrder, PlaceOrder, Reject
from mockstack.broker.store import ConflictError, Store

SYMBOLS = ("AAA", "BBBB", "CCC")
S1 = SessionRef("S-1", "client-a")
S2 = SessionRef("S-2", "client-a")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "broker.sqlite3"


def make_engine(db: Path, clock: FakeClock, **settings: object) -> Engine:
    return Engine(Store(db), SYMBOLS, Settings(**settings), clock=clock, rng=random.Random(1))  # type: ignore[arg-type]


@pytest.fixture
def engine(db: Path, clock: FakeClock) -> Engine:
    return make_engine(db, clock)


def order(key: str, symbol: str = "AAA", side: Side = Side.BUY, qty: int = 10, price: float = 50.0) -> PlaceOrder:
    return PlaceOrder(key, symbol, side, qty, price)


def sample(engine: Engine, name: str, **labels: str) -> float:
    value = engine.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# --------------------------------------------------------------------------- idempotency


def test_new_order_is_acked_and_stored(engine: Engine) -> None:
    outcome = engine.place(S1, order("k1"))
    assert outcome.answer == Ack("O-000001", "k1", "accepted", False)
    assert outcome.new_order is not None and outcome.new_order.status is OrderStatus.ACCEPTED
    assert [o.idempotency_key for o in engine.orders()] == ["k1"]
    assert sample(engine, "broker_orders_received_total", result="accepted") == 1


def test_repeated_key_returns_original_ack_and_creates_nothing(engine: Engine) -> None:
    first = engine.place(S1, order("k1"))
    again = engine.place(S2, order("k1"))
    assert again.answer == Ack("O-000001", "k1", "accepted", True)
    assert again.new_order is None
    assert len(engine.orders()) == 1
    assert first.result == "accepted" and again.result == "duplicate"
    assert sample(engine, "broker_orders_received_total", result="duplicate") == 1


def test_key_wins_even_when_the_repeat_differs(engine: Engine) -> None:
    engine.place(S1, order("k1", qty=10))
    again = engine.place(S1, order("k1", symbol="BBBB", qty=99))
    assert isinstance(again.answer, Ack) and again.answer.duplicate
    assert len(engine.orders()) == 1


def test_idempotency_survives_a_restart(db: Path, clock: FakeClock) -> None:
    first = make_engine(db, clock)
    first.place(S1, order("k1"))
    first.place(S1, order("k2", symbol="NOPE"))
    first.store.close()
    restarted = make_engine(db, clock)
    dup = restarted.place(SessionRef("S-9", "client-b"), order("k1"))
    assert dup.answer == Ack("O-000001", "k1", "accepted", True) and dup.new_order is None
    rej = restarted.place(SessionRef("S-9", "client-b"), order("k2", symbol="NOPE"))
    assert isinstance(rej.answer, Reject) and rej.answer.reason == "unknown_symbol" and rej.answer.duplicate
    assert len(restarted.orders()) == 1


def test_repeated_key_of_a_reject_returns_the_original_reject(engine: Engine) -> None:
    original = engine.place(S1, order("k1", qty=5000)).answer
    assert isinstance(original, Reject) and original.reason == "size_limit"
    again = engine.place(S1, order("k1", qty=1)).answer
    assert isinstance(again, Reject)
    assert (again.reason, again.detail, again.duplicate) == ("size_limit", original.detail, True)
    assert sample(engine, "broker_rejects_total", reason="size_limit") == 1


def test_invalid_order_is_not_remembered(engine: Engine) -> None:
    reject = engine.invalid(S1, InvalidOrder("qty", "qty must be an integer > 0, got 0", "k1"))
    assert (reject.reason, reject.field, reject.idempotency_key) == ("invalid_order", "qty", "k1")
    assert isinstance(engine.place(S1, order("k1")).answer, Ack)
    assert sample(engine, "broker_rejects_total", reason="invalid_order") == 1


# --------------------------------------------------------------------------- reject rules


def test_unknown_symbol(engine: Engine) -> None:
    answer = engine.place(S1, order("k", symbol="ZZZ")).answer
    assert isinstance(answer, Reject) and answer.reason == "unknown_symbol" and "ZZZ" in answer.detail


def test_size_limit_is_inclusive(db: Path, clock: FakeClock) -> None:
    engine = make_engine(db, clock, max_order_qty=100)
    assert isinstance(engine.place(S1, order("a", qty=100)).answer, Ack)
    answer = engine.place(S1, order("b", qty=101)).answer
    assert isinstance(answer, Reject) and answer.reason == "size_limit"


def test_reject_rate_one_rejects_everything_and_zero_nothing(engine: Engine) -> None:
    assert engine.set_reject_rate(1.0) == 0.0
    answer = engine.place(S1, order("a")).answer
    assert isinstance(answer, Reject) and answer.reason == "random_reject"
    assert sample(engine, "broker_reject_rate") == 1.0
    assert engine.set_reject_rate(0.0) == 1.0
    assert isinstance(engine.place(S1, order("b")).answer, Ack)


def test_reject_rate_is_seeded_and_roughly_the_rate(db: Path, clock: FakeClock) -> None:
    engine = make_engine(db, clock, reject_rate=0.3, max_orders_per_second=10_000)
    results = [engine.place(S1, order(f"k{i}")).result for i in range(400)]
    assert 80 <= results.count("rejected") <= 160


def test_reject_rate_must_be_a_probability(engine: Engine) -> None:
    with pytest.raises(ValueError):
        engine.set_reject_rate(1.5)


def test_rate_limit_with_injected_clock(db: Path, clock: FakeClock) -> None:
    engine = make_engine(db, clock, max_orders_per_second=3)
    answers = [engine.place(S1, order(f"k{i}")).answer for i in range(4)]
    assert [type(a) for a in answers] == [Ack, Ack, Ack, Reject]
    last = answers[3]
    assert isinstance(last, Reject) and last.reason == "rate_limit"
    assert engine.place(S1, order("k0")).result == "duplicate"  # duplicates bypass the limit
    clock.advance(0.999)
    assert engine.place(S1, order("k5")).result == "rejected"
    clock.advance(0.001)
    assert engine.place(S1, order("k6")).result == "accepted"


def test_rate_limiter_window_slides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    clock.advance(0.5)
    assert not limiter.try_acquire()
    clock.advance(0.5)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()


# --------------------------------------------------------------------------- fills


def test_partial_then_final_fill_at_the_limit_price(engine: Engine) -> None:
    new = engine.place(S1, order("k1", qty=10, price=42.5)).new_order
    assert new is not None
    first = engine.fill_next(new.order_id)
    second = engine.fill_next(new.order_id)
    assert first is not None and second is not None
    assert (first.qty, first.cum_qty, first.leaves_qty, first.status) == (5, 5, 5, OrderStatus.PARTIALLY_FILLED)
    assert (second.qty, second.cum_qty, second.leaves_qty, second.status) == (5, 10, 0, OrderStatus.FILLED)
    assert first.price == second.price == 42.5
    assert engine.fill_next(new.order_id) is None
    assert engine.positions() == {"AAA": 10}
    assert sample(engine, "broker_fills_total") == 2
    assert sample(engine, "broker_position", symbol="AAA") == 10


def test_one_unit_fills_at_once(engine: Engine) -> None:
    new = engine.place(S1, order("k1", qty=1)).new_order
    assert new is not None
    fill = engine.fill_next(new.order_id)
    assert fill is not None and fill.status is OrderStatus.FILLED and fill.qty == 1


def test_partial_ratio_applies(db: Path, clock: FakeClock) -> None:
    engine = make_engine(db, clock, partial_fill_ratio=0.2)
    new = engine.place(S1, order("k1", qty=10)).new_order
    assert new is not None
    fills = [engine.fill_next(new.order_id), engine.fill_next(new.order_id)]
    assert [f.qty for f in fills if f is not None] == [2, 8]


def test_a_fill_is_never_applied_twice(engine: Engine) -> None:
    new = engine.place(S1, order("k1", qty=10)).new_order
    assert new is not None
    engine.fill_next(new.order_id)
    with pytest.raises(ConflictError):
        engine.store.record_fill(new.order_id, 0, 5)  # a stale replay of the first fill
    with pytest.raises(ConflictError):
        engine.store.record_fill(new.order_id, 5, 6)  # more than what is left
    assert [f.qty for f in engine.fills(new.order_id)] == [5]


def test_fills_resume_after_restart_without_refilling(db: Path, clock: FakeClock) -> None:
    first = make_engine(db, clock)
    new = first.place(S1, order("k1", qty=10)).new_order
    assert new is not None
    first.fill_next(new.order_id)
    first.store.close()
    restarted = make_engine(db, clock)
    assert [o.order_id for o in restarted.working_orders()] == [new.order_id]
    assert restarted.positions() == {"AAA": 5}
    last = restarted.fill_next(new.order_id)
    assert last is not None and last.qty == 5 and last.status is OrderStatus.FILLED
    assert restarted.fill_next(new.order_id) is None
    assert restarted.positions() == {"AAA": 10}


def test_sells_net_against_buys(engine: Engine) -> None:
    for key, side, qty in (("b", Side.BUY, 10), ("s", Side.SELL, 4)):
        new = engine.place(S1, order(key, side=side, qty=qty)).new_order
        assert new is not None
        while engine.fill_next(new.order_id) is not None:
            pass
    assert engine.positions() == {"AAA": 6}


# --------------------------------------------------------------------------- cancels


def test_cancel_working_then_again(engine: Engine) -> None:
    new = engine.place(S1, order("k1", qty=10)).new_order
    assert new is not None
    engine.fill_next(new.order_id)
    cancelled = engine.cancel(new.order_id)
    assert cancelled == Cancelled(new.order_id, "k1", "client", 5)
    assert engine.fill_next(new.order_id) is None
    again = engine.cancel(new.order_id)
    assert isinstance(again, CancelReject) and again.reason == "not_working"
    unknown = engine.cancel("O-999999")
    assert isinstance(unknown, CancelReject) and unknown.reason == "unknown_order"
    assert engine.positions() == {"AAA": 5}


def test_cancel_session_orders_only_touches_that_session(engine: Engine) -> None:
    a = engine.place(S1, order("a")).new_order
    b = engine.place(S2, order("b")).new_order
    done = engine.place(S1, order("c", qty=1)).new_order
    assert a is not None and b is not None and done is not None
    engine.fill_next(done.order_id)
    cancelled = engine.cancel_session_orders("S-1")
    assert [c.order_id for _, c in cancelled] == [a.order_id]
    assert cancelled[0][1].reason == "disconnect"
    statuses = {o.order_id: o.status for o in engine.orders()}
    assert statuses == {
        a.order_id: OrderStatus.CANCELLED,
        b.order_id: OrderStatus.ACCEPTED,
        done.order_id: OrderStatus.FILLED,
    }


# --------------------------------------------------------------------------- positions and settings


def test_inject_and_remove_position(db: Path, clock: FakeClock) -> None:
    engine = make_engine(db, clock)
    assert engine.inject_position("BBBB", -7) == {"BBBB": -7}
    assert sample(engine, "broker_position", symbol="BBBB") == -7
    engine.store.close()
    restarted = make_engine(db, clock)
    assert restarted.positions() == {"BBBB": -7}
    assert restarted.remove_injection("BBBB") is True
    assert restarted.positions() == {}
    assert restarted.remove_injection("BBBB") is False
    with pytest.raises(ValueError):
        restarted.inject_position("NOPE", 1)
    with pytest.raises(ValueError):
        restarted.inject_position("AAA", 0)


def test_settings_answer_the_previous_value(engine: Engine) -> None:
    assert engine.set_fill_latency_ms(750.0) == 50.0
    assert engine.fill_latency_s == 0.75
    assert sample(engine, "broker_fill_latency_seconds") == 0.75
    assert engine.set_cancel_on_disconnect(False) is True
    assert engine.cancel_on_disconnect is False
    with pytest.raises(ValueError):
        engine.set_fill_latency_ms(-1)


def test_store_is_in_wal_mode(engine: Engine) -> None:
    assert engine.store.ping() == "wal"

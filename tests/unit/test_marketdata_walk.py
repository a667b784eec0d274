"""The seeded random walk and the compressed clock of the marketdata service (no sleeping)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from mockstack.common.universe import build_universe
from mockstack.marketdata.clock import BarClock, ManualTime
from mockstack.marketdata.feed import MarketFeed
from mockstack.marketdata.walk import SymbolWalk

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
START_TS = int(START.timestamp())


def make_feed(
    *, seed: int = 42, symbols: int = 4, history: int = 0, interval_ms: int = 200, volatility: float = 0.001
) -> tuple[MarketFeed, ManualTime]:
    time = ManualTime()
    clock = BarClock(START, interval_ms, history, time.now)
    return MarketFeed(build_universe(seed, symbols), seed=seed, volatility=volatility, clock=clock), time


def test_noise_is_a_pure_function_of_seed_symbol_and_index() -> None:
    a = SymbolWalk(7, "ABC", 100.0, 0.001)
    b = SymbolWalk(7, "ABC", 100.0, 0.001)
    assert [a.noise(i) for i in (0, 5, 99_999)] == [b.noise(i) for i in (0, 5, 99_999)]
    assert a.noise(5) == a.noise(5)
    assert SymbolWalk(8, "ABC", 100.0, 0.001).noise(5) != a.noise(5)
    assert SymbolWalk(7, "ABD", 100.0, 0.001).noise(5) != a.noise(5)


def test_bar_wicks_and_volume_come_from_the_bar_noise() -> None:
    walk = SymbolWalk(3, "ABC", 100.0, 0.01)
    n = walk.noise(17)
    bar = walk.bar(17, 0, 100.0, 101.0)
    assert bar.high == round(101.0 * (1 + 0.01 * (0.1 + n.high_u)), 4)
    assert bar.low == round(100.0 * (1 - 0.01 * (0.1 + n.low_u)), 4)
    assert bar.volume == 500 + int(n.volume_u * 4500)
    assert walk.next_close(17, 100.0) == 100.0 * math.exp(0.01 * n.z)


def test_noise_looks_standard_normal() -> None:
    walk = SymbolWalk(1, "XYZ", 50.0, 0.001)
    zs = [walk.noise(i).z for i in range(20_000)]
    mean = sum(zs) / len(zs)
    var = sum((z - mean) ** 2 for z in zs) / len(zs)
    assert abs(mean) < 0.05
    assert 0.9 < var < 1.1


def test_same_seed_same_history_regardless_of_how_time_advances() -> None:
    stepwise, t1 = make_feed(history=10)
    for _ in range(40):
        t1.advance(0.2)
        stepwise.advance()
    jumped, t2 = make_feed(history=10)
    t2.advance(8.0)
    for symbol in stepwise.symbols:
        assert stepwise.bars(symbol) == jumped.bars(symbol)
        assert len(jumped.bars(symbol)) == 50


def test_different_seeds_give_different_walks() -> None:
    a, _ = make_feed(seed=1, history=20)
    b, _ = make_feed(seed=2, history=20)
    assert [x.close for x in a.bars(a.symbols[0])] != [x.close for x in b.bars(b.symbols[0])]


def test_clean_bars_are_consistent_continuous_and_on_the_five_minute_grid() -> None:
    feed, _ = make_feed(history=2_000, volatility=0.01)
    for symbol, instrument in zip(feed.symbols, feed.instruments, strict=True):
        bars = feed.bars(symbol)
        assert bars[0].open == instrument.start_price
        assert bars[0].timestamp == START_TS
        for prev, bar in zip(bars, bars[1:], strict=False):
            assert bar.timestamp - prev.timestamp == 300
            assert bar.open == prev.close
        for bar in bars:
            assert all(math.isfinite(v) and v > 0 for v in (bar.open, bar.high, bar.low, bar.close))
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            assert bar.low < bar.high
            assert 500 <= bar.volume < 5000


def test_volatility_sets_the_size_of_the_moves() -> None:
    feed, _ = make_feed(history=5_000, symbols=1, volatility=0.002)
    closes = [b.close for b in feed.bars(feed.symbols[0])]
    rets = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]
    sd = math.sqrt(sum(r * r for r in rets) / len(rets))
    assert 0.0018 < sd < 0.0022


def test_clock_publishes_history_then_one_bar_per_interval() -> None:
    time = ManualTime(100.0)
    clock = BarClock(START, 200, 50, time.now)
    assert clock.due_count() == 50
    time.advance(0.199)
    assert clock.due_count() == 50
    time.advance(0.001)
    assert clock.due_count() == 51
    for _ in range(1000):
        time.advance(0.2)
    assert clock.due_count() == 1051  # integer microseconds: no float drift
    assert clock.seconds_until_next_bar() == pytest.approx(0.2)


def test_clock_maps_indices_and_timestamps() -> None:
    clock = BarClock(START, 200, 0, ManualTime().now)
    assert clock.timestamp_of(0) == START_TS
    assert clock.timestamp_of(3) == START_TS + 900
    assert clock.first_index_at_or_after(START_TS) == 0
    assert clock.first_index_at_or_after(START_TS + 1) == 1
    assert clock.first_index_at_or_after(START_TS - 299) == 0
    assert clock.last_index_at_or_before(START_TS + 599) == 1
    assert clock.last_index_at_or_before(START_TS - 1) == -1


def test_manual_time_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="forward"):
        ManualTime().advance(-1)


def test_storage_is_one_float_per_bar_per_symbol() -> None:
    feed, time = make_feed(symbols=2)
    time.advance(200 * 0.2)
    feed.advance()
    assert feed.stored_bars() == 200
    assert all(len(c) == 200 and c.itemsize == 8 for c in feed._closes.values())

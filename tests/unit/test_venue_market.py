"""The venue's price book: ticks from marketdata's walk, aligned klines with an open last candle, shocks, stale."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mockstack.venue.market import DEFAULT_MARKETS, INTERVALS, PriceBook, UnknownSymbol, parse_market


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


GENESIS = 1_800_000_000  # a multiple of 3600 would hide alignment bugs: not one
NOW = GENESIS + 7200 + 37


def book(clock: Clock, volatility: float = 0.001) -> PriceBook:
    return PriceBook(DEFAULT_MARKETS, 42, volatility, GENESIS, clock=clock)


def test_klines_are_aligned_to_the_interval_and_the_last_one_is_still_open() -> None:
    clock = Clock(NOW)
    b = book(clock)
    rows = b.klines("BTCUSDT", 60, limit=5)
    assert len(rows) == 5
    assert all(k.open_time % 60 == 0 for k in rows)
    assert [k.open_time for k in rows] == list(range(rows[0].open_time, rows[0].open_time + 300, 60))
    last = rows[-1]
    assert last.open_time <= NOW < last.open_time + 60, "the last candle is the current, still open one"
    assert last.trades == NOW - last.open_time + 1  # only the seconds elapsed so far
    assert last.close == pytest.approx(b.price("BTCUSDT"))
    for k in rows:
        assert k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high
    # A closed candle never changes; the open one grows as time passes.
    clock.t += 10
    later = b.klines("BTCUSDT", 60, limit=5)
    assert later[-2] == rows[-2]
    assert later[-1].trades == last.trades + 10


def test_kline_row_has_the_twelve_binance_fields() -> None:
    b = book(Clock(NOW))
    market = b.market("ETHUSDT")
    row = b.klines("ETHUSDT", 300, limit=1)[0].row(market)
    assert len(row) == 12
    assert isinstance(row[0], int) and row[0] % 300_000 == 0
    assert row[6] == row[0] + 300_000 - 1
    assert all(isinstance(v, str) for v in row[1:6])
    assert Decimal(str(row[2])) >= Decimal(str(row[3]))


def test_start_end_and_limit_select_the_window() -> None:
    b = book(Clock(NOW))
    start = GENESIS + 600
    rows = b.klines("BTCUSDT", 60, start=start, limit=3)
    assert [k.open_time for k in rows] == [start - start % 60 + 60 * i + (60 if start % 60 else 0) for i in range(3)]
    rows = b.klines("BTCUSDT", 60, end=GENESIS + 1000, limit=1000)
    assert rows[-1].open_time <= GENESIS + 1000 and rows[0].open_time >= GENESIS
    assert b.klines("BTCUSDT", 60, start=NOW + 3600) == []


def test_the_walk_is_deterministic_per_seed_and_moves_every_second() -> None:
    a, b = book(Clock(NOW)), book(Clock(NOW))
    assert a.price("SOLUSDT") == b.price("SOLUSDT")
    clock = Clock(NOW)
    c = book(clock)
    before = c.price("SOLUSDT")
    clock.t += 1
    assert c.price("SOLUSDT") != before


def test_bid_is_below_ask_on_the_tick_grid() -> None:
    b = book(Clock(NOW))
    for m in DEFAULT_MARKETS:
        bid, ask = b.bid_ask(m.symbol)
        assert bid < ask
        assert m.on_price_grid(bid) and m.on_price_grid(ask)


def test_a_price_shock_moves_the_price_and_the_walk_goes_on_from_there() -> None:
    clock = Clock(NOW)
    b = book(clock)
    tick, before, after = b.shock("BTCUSDT", -10)
    assert after == pytest.approx(before * 0.9)
    assert b.price("BTCUSDT") == pytest.approx(after)
    clock.t += 5
    assert b.price("BTCUSDT") == pytest.approx(after, rel=0.02)
    # A restart with the recorded shock rebuilds the same prices.
    replay = PriceBook(DEFAULT_MARKETS, 42, 0.001, GENESIS, shocks=[("BTCUSDT", tick, 0.9)], clock=clock)
    assert replay.price("BTCUSDT") == pytest.approx(b.price("BTCUSDT"))


def test_frozen_klines_stop_advancing_until_unfrozen() -> None:
    clock = Clock(NOW)
    b = book(clock)
    frozen = b.freeze()
    last = b.klines("BTCUSDT", 60, limit=1)[-1]
    clock.t += 180
    assert b.klines("BTCUSDT", 60, limit=1)[-1] == last
    assert b.price("BTCUSDT") != last.close, "trading prices keep moving while klines are stale"
    b.unfreeze()
    assert b.klines("BTCUSDT", 60, limit=1)[-1].open_time > frozen


def test_unknown_symbol_names_the_known_ones() -> None:
    with pytest.raises(UnknownSymbol, match="BTCUSDT"):
        book(Clock(NOW)).price("XRPUSDT")


def test_parse_market_sizes_the_filters_to_the_price() -> None:
    m = parse_market("ADA/USDT:0.5")
    assert (m.symbol, m.base, m.quote) == ("ADAUSDT", "ADA", "USDT")
    assert m.tick_size == Decimal("0.000001")
    for bad in ("ADAUSDT:1", "ADA/USDT", "ada/usdt:1", "ADA/USDT:-1", "ADA/USDT:nan"):
        with pytest.raises(ValueError):
            parse_market(bad)


def test_every_served_interval_is_a_whole_number_of_seconds() -> None:
    assert INTERVALS["1m"] == 60 and INTERVALS["5m"] == 300 and INTERVALS["1h"] == 3600

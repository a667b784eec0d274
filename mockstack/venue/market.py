"""The venue's markets and their prices: one tick of marketdata's seeded walk per second of real time.

Tick ``k`` of a symbol is the second ``genesis + k`` (unix time); its price is marketdata's
:class:`~mockstack.marketdata.walk.SymbolWalk` step from tick ``k - 1``, times any price shock
booked at or before that tick. Prices are kept in one ``array('d')`` per symbol (8 bytes per
second) and extended lazily up to "now", so klines, depth and matching all read the same
prices. Klines of any interval aggregate the ticks of their window: open = first tick, close =
last tick so far (the current candle is still open), high/low = extremes. All public methods are
thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from mockstack.marketdata.walk import SymbolWalk

TimeSource = Callable[[], float]
"""Wall-clock seconds (``time.time`` in the service, a manual clock in tests)."""

INTERVALS: dict[str, int] = {
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
}
"""Binance kline intervals the venue serves, in seconds (weeks and months are not served)."""

MAX_KLINES = 1000
SPREAD = Decimal("0.0002")
"""Relative bid/ask spread around the walk's price (2 basis points)."""


@dataclass(frozen=True)
class Market:
    """One spot symbol and its exchange filters (``exchangeInfo`` publishes them)."""

    symbol: str
    base: str
    quote: str
    start_price: float
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal

    def round_price(self, price: Decimal, up: bool = False) -> Decimal:
        steps = (price / self.tick_size).to_integral_value(ROUND_UP if up else ROUND_DOWN)
        return (steps * self.tick_size).normalize()

    def on_price_grid(self, price: Decimal) -> bool:
        return price > 0 and (price / self.tick_size) == (price / self.tick_size).to_integral_value()

    def on_qty_grid(self, qty: Decimal) -> bool:
        return (qty / self.step_size) == (qty / self.step_size).to_integral_value()


DEFAULT_MARKETS: tuple[Market, ...] = (
    Market("BTCUSDT", "BTC", "USDT", 60000.0, Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5")),
    Market("ETHUSDT", "ETH", "USDT", 3000.0, Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"), Decimal("5")),
    Market("SOLUSDT", "SOL", "USDT", 150.0, Decimal("0.01"), Decimal("0.001"), Decimal("0.001"), Decimal("5")),
)


def parse_market(text: str) -> Market:
    """``BASE/QUOTE:price`` (e.g. ``BTC/USDT:60000``) -> a market with filters sized to the price."""
    pair, sep, price_text = text.strip().partition(":")
    base, slash, quote = pair.partition("/")
    if not (sep and slash and base.isalnum() and quote.isalnum() and base.isupper() and quote.isupper()):
        raise ValueError(text)
    price = float(price_text)
    if not (math.isfinite(price) and price > 0):
        raise ValueError(text)
    tick = Decimal(1).scaleb(min(0, math.floor(math.log10(price)) - 5))  # ~6 significant digits
    step = Decimal(1).scaleb(-max(0, math.floor(math.log10(price)) + 1))  # ~1/price of the quote
    return Market(f"{base}{quote}", base, quote, price, tick, step, step, Decimal("5"))


@dataclass(frozen=True)
class Kline:
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int

    def row(self, market: Market) -> list[object]:
        """The 12-field Binance row: times in ms, prices and volumes as strings."""
        quote_volume = self.volume * (self.open + self.close) / 2
        return [
            self.open_time * 1000,
            _fmt(self.open, market.tick_size),
            _fmt(self.high, market.tick_size),
            _fmt(self.low, market.tick_size),
            _fmt(self.close, market.tick_size),
            _fmt(self.volume, market.step_size),
            self.close_time * 1000 + 999,
            f"{quote_volume:.8f}",
            self.trades,
            _fmt(self.volume / 2, market.step_size),
            f"{quote_volume / 2:.8f}",
            "0",
        ]


def _fmt(value: float, grid: Decimal) -> str:
    return str(Decimal(repr(value)).quantize(grid))


class UnknownSymbol(LookupError):
    def __init__(self, symbol: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown symbol {symbol!r}; known: {', '.join(known)}")
        self.symbol = symbol


class PriceBook:
    """Per-symbol tick prices from ``genesis`` to now, price shocks and the stale-klines freeze."""

    def __init__(
        self,
        markets: Sequence[Market],
        seed: int,
        volatility: float,
        genesis: int,
        shocks: Sequence[tuple[str, int, float]] = (),
        clock: TimeSource = time.time,
    ) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.genesis = genesis
        self._clock = clock
        self._lock = threading.RLock()
        self._walks = {m.symbol: SymbolWalk(seed, m.symbol, m.start_price, volatility) for m in markets}
        self._ticks: dict[str, array[float]] = {m.symbol: array("d", [m.start_price]) for m in markets}
        self._shocks: dict[str, dict[int, float]] = {m.symbol: {} for m in markets}
        for symbol, tick, factor in shocks:
            if symbol in self._shocks:
                self._shocks[symbol][tick] = self._shocks[symbol].get(tick, 1.0) * factor
        self._frozen_at: int | None = None
        self._kline_cache: dict[tuple[str, int, int], Kline] = {}

    # ----------------------------------------------------------------------- time and prices

    def now(self) -> float:
        return self._clock()

    def current_tick(self) -> int:
        return max(0, int(self._clock()) - self.genesis)

    def market(self, symbol: str) -> Market:
        try:
            return self.markets[symbol]
        except KeyError:
            raise UnknownSymbol(symbol, list(self.markets)) from None

    def _extend(self, symbol: str, upto: int) -> array[float]:
        ticks = self._ticks[symbol]
        if len(ticks) <= upto:
            walk = self._walks[symbol]
            shocks = self._shocks[symbol]
            price = ticks[-1]
            for k in range(len(ticks), upto + 1):
                price = walk.next_close(k, price) * shocks.get(k, 1.0)
                ticks.append(price)
        return ticks

    def price(self, symbol: str) -> float:
        """The walk's price now (the mid between bid and ask)."""
        self.market(symbol)
        with self._lock:
            tick = self.current_tick()
            return self._extend(symbol, tick)[tick]

    def bid_ask(self, symbol: str) -> tuple[Decimal, Decimal]:
        market = self.market(symbol)
        mid = Decimal(repr(self.price(symbol)))
        bid = market.round_price(mid * (1 - SPREAD / 2))
        ask = market.round_price(mid * (1 + SPREAD / 2), up=True)
        if ask <= bid:
            ask = bid + market.tick_size
        return bid, ask

    def shock(self, symbol: str, pct: float) -> tuple[int, float, float]:
        """Move ``symbol``'s price by ``pct`` percent from the current tick on; returns (tick, before, after)."""
        self.market(symbol)
        factor = 1.0 + pct / 100.0
        with self._lock:
            tick = self.current_tick()
            ticks = self._extend(symbol, tick)
            before = ticks[tick]
            self._shocks[symbol][tick] = self._shocks[symbol].get(tick, 1.0) * factor
            ticks[tick] = before * factor
            self._kline_cache = {k: v for k, v in self._kline_cache.items() if k[0] != symbol}
            return tick, before, ticks[tick]

    # ----------------------------------------------------------------------- stale klines

    def freeze(self) -> int:
        """Klines stop advancing at the current second (stale feed); returns that second."""
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = int(self._clock())
            return self._frozen_at

    def unfreeze(self) -> None:
        with self._lock:
            self._frozen_at = None

    @property
    def frozen_at(self) -> int | None:
        return self._frozen_at

    # ----------------------------------------------------------------------- klines

    def klines(
        self, symbol: str, interval: int, start: int | None = None, end: int | None = None, limit: int = 500
    ) -> list[Kline]:
        """Candles of ``interval`` seconds aligned to it; ``start``/``end`` are unix seconds (inclusive)."""
        self.market(symbol)
        with self._lock:
            now = int(self._clock()) if self._frozen_at is None else self._frozen_at
            last_open = now - now % interval
            first_open = self.genesis + (-self.genesis) % interval
            if end is not None:
                last_open = min(last_open, end - end % interval)
            if start is not None:
                first_open = max(first_open, start + (-start) % interval)
                opens = range(first_open, last_open + 1, interval)[:limit]
            else:
                opens = range(first_open, last_open + 1, interval)[-limit:]
            if not opens:
                return []
            ticks = self._extend(symbol, now - self.genesis)
            return [self._kline(symbol, ticks, interval, t, now) for t in opens]

    def _kline(self, symbol: str, ticks: array[float], interval: int, open_time: int, now: int) -> Kline:
        closed = open_time + interval <= now
        key = (symbol, interval, open_time)
        if closed and key in self._kline_cache:
            return self._kline_cache[key]
        lo = open_time - self.genesis
        hi = min(open_time + interval - 1, now) - self.genesis
        window = ticks[lo : hi + 1]
        walk = self._walks[symbol]
        volume = sum(0.5 + walk.noise(k).volume_u for k in range(lo, hi + 1, max(1, interval // 60)))
        kline = Kline(
            open_time=open_time,
            close_time=open_time + interval - 1,
            open=window[0],
            high=max(window),
            low=min(window),
            close=window[-1],
            volume=volume * 10 / window[0] ** 0.5,
            trades=len(window),
        )
        if closed:
            self._kline_cache[key] = kline
        return kline

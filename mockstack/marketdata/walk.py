"""The seeded random walk behind every symbol's M5 bars.

Bar ``i`` of a symbol depends only on ``(seed, symbol, i)`` and the previous bar's close: the
per-bar randomness comes from a keyed BLAKE2b hash of the bar index (a counter-based generator), so
any bar can be (re)derived in O(1) without replaying a generator. The feed therefore stores one
``float`` (the close) per published bar and rebuilds open/high/low/volume on demand.

The walk is geometric: ``close[i] = close[i-1] * exp(volatility * z[i])`` with ``z`` standard
normal (Box-Muller). ``open[i] = close[i-1]`` (the instrument's start price for bar 0); high and low
are wicks beyond ``max(open, close)`` / ``min(open, close)`` so a clean bar always satisfies
``low < min(open, close) <= max(open, close) < high`` and every price is positive.
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from dataclasses import dataclass

BAR_SECONDS = 300
"""An M5 bar spans five minutes of simulated time."""

PRICE_DECIMALS = 4

_UNPACK = struct.Struct("<4Q").unpack
_INDEX = struct.Struct("<Q").pack
_TWO_53 = float(1 << 53)
_TWO_PI = 2.0 * math.pi


def utc_text(timestamp: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of a unix timestamp."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


@dataclass(frozen=True, slots=True)
class Bar:
    """One M5 bar as served (prices already rounded); ``index`` is its position on the bar grid."""

    index: int
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: int

    @property
    def datetime_text(self) -> str:
        """``YYYY-MM-DD HH:MM:SS`` in UTC, as EODHD writes it."""
        return utc_text(self.timestamp)


@dataclass(frozen=True, slots=True)
class BarNoise:
    """The random draws of one bar: ``z`` moves the close, the ``*_u`` values are uniforms in [0, 1)."""

    z: float
    high_u: float
    low_u: float
    volume_u: float


class SymbolWalk:
    """The deterministic random walk of one symbol."""

    def __init__(self, seed: int, symbol: str, start_price: float, volatility: float) -> None:
        if not (start_price > 0 and math.isfinite(start_price)):
            raise ValueError(f"start price of {symbol} must be a positive number, got {start_price!r}")
        if not (0 < volatility < 0.5):
            raise ValueError(f"volatility must be in (0, 0.5), got {volatility!r}")
        self.symbol = symbol
        self.start_price = start_price
        self.volatility = volatility
        self._key = hashlib.blake2b(f"{seed}\x00{symbol}".encode(), digest_size=32).digest()

    def _z(self, a: int, b: int) -> float:
        u1 = ((a >> 11) + 1) / _TWO_53  # (0, 1]: log() is finite
        u2 = (b >> 11) / _TWO_53
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)

    def _draws(self, index: int) -> tuple[int, int, int, int]:
        draws: tuple[int, int, int, int] = _UNPACK(
            hashlib.blake2b(_INDEX(index), digest_size=32, key=self._key).digest()
        )
        return draws

    def noise(self, index: int) -> BarNoise:
        """The draws of bar ``index``: a pure function of (seed, symbol, index)."""
        a, b, c, d = self._draws(index)
        return BarNoise(
            z=self._z(a, b), high_u=(c >> 11) / _TWO_53, low_u=(d >> 11) / _TWO_53, volume_u=(a & 0xFFFF) / 65536.0
        )

    def next_close(self, index: int, prev_close: float) -> float:
        """The undisturbed close of bar ``index`` given the previous close."""
        a, b, _, _ = self._draws(index)
        return prev_close * math.exp(self.volatility * self._z(a, b))

    def bar(self, index: int, timestamp: int, open_: float, close: float) -> Bar:
        """The full bar for a known open (previous close) and close; wicks and volume from the noise."""
        a, _, c, d = self._draws(index)
        top = max(open_, close)
        bottom = min(open_, close)
        high = top * (1.0 + self.volatility * (0.1 + (c >> 11) / _TWO_53))
        low = bottom * (1.0 - self.volatility * (0.1 + (d >> 11) / _TWO_53))
        return Bar(
            index=index,
            timestamp=timestamp,
            open=round(open_, PRICE_DECIMALS),
            high=round(high, PRICE_DECIMALS),
            low=round(low, PRICE_DECIMALS),
            close=round(close, PRICE_DECIMALS),
            volume=500 + int((a & 0xFFFF) / 65536.0 * 4500),
        )

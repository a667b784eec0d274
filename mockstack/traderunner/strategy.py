"""A deliberately simple, long-biased strategy so that "a few positions are open" at all times.

Per symbol the target position is ``base_qty`` units, plus ``add_qty`` (``base_qty // 5``) while
SMA(fast) of the valid closes is above SMA(slow). The strategy only says what it wants; risk
checks, the kill switch and the data SLA decide whether it may be sent. It never proposes an order
while the symbol already has an order in flight, and it prices at the last valid close (the mock
broker fills at ``limit_price``). Why these sizes: see :mod:`mockstack.traderunner.config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mockstack.traderunner.config import StrategyConfig

BAND = 0.001  # relative SMA distance to add / remove the add-on (one bar's volatility)


@dataclass(frozen=True)
class OrderIntent:
    symbol: str
    side: str
    qty: int
    limit_price: float
    reason: str


def sma(values: Sequence[float], n: int) -> float | None:
    if n <= 0 or len(values) < n:
        return None
    return sum(values[-n:]) / n


class Strategy:
    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def target(self, closes: Sequence[float], position: int = 0) -> int:
        """base_qty, plus add_qty while SMA(fast) > SMA(slow), with a hysteresis band.

        The add-on is bought when fast exceeds slow by ``BAND`` and sold when it falls ``BAND``
        below; in between the current holding stays. Without the band a random walk crosses the
        SMAs every few bars and the strategy churns (~75 orders/minute on 8 symbols).
        """
        fast = sma(closes, self.config.fast)
        slow = sma(closes, self.config.slow)
        holding_add = position > self.config.base_qty
        if fast is None or slow is None:
            trending = False
        elif holding_add:
            trending = fast > slow * (1 - BAND)
        else:
            trending = fast > slow * (1 + BAND)
        return self.config.base_qty + (self.config.add_qty if trending else 0)

    def decide(self, symbol: str, closes: Sequence[float], position: int, in_flight: int) -> OrderIntent | None:
        """The order that moves ``position`` to the target, or None (nothing to do / order in flight)."""
        if not closes or in_flight:
            return None
        target = self.target(closes, position)
        diff = target - position
        if diff == 0:
            return None
        side = "buy" if diff > 0 else "sell"
        reason = (
            "base position"
            if abs(position) < self.config.base_qty
            else ("fast SMA above slow" if diff > 0 else "fast SMA at/below slow")
        )
        return OrderIntent(symbol, side, abs(diff), round(closes[-1], 4), reason)

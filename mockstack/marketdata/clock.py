"""The compressed clock: one 5-minute bar becomes due every ``bar_interval_ms`` of real time.

At construction ``history_bars`` bars are already due (so a strategy can warm up); after ``k``
intervals of real time, ``history_bars + k`` bars are due. Bar ``i`` carries the simulated
timestamp ``start + 300 * i``. The time source is injected (``time.monotonic`` in the service,
:class:`ManualTime` in tests and the benchmark) so nothing here ever sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mockstack.marketdata.walk import BAR_SECONDS

TimeSource = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` or :meth:`ManualTime.now`)."""


class ManualTime:
    """A time source that only moves when told to; kept in integer microseconds so steps are exact."""

    def __init__(self, start: float = 0.0) -> None:
        self._us = round(start * 1_000_000)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._us / 1_000_000

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds!r}")
        with self._lock:
            self._us += round(seconds * 1_000_000)


class BarClock:
    """Maps real (monotonic) time to the number of bars due and bar indices to simulated time."""

    def __init__(
        self,
        start: datetime,
        bar_interval_ms: int,
        history_bars: int,
        time_source: TimeSource = time.monotonic,
        already_elapsed_s: float = 0.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated start time must be timezone-aware")
        if bar_interval_ms < 1:
            raise ValueError(f"bar interval must be at least 1 ms, got {bar_interval_ms}")
        if history_bars < 0:
            raise ValueError(f"history bars must be >= 0, got {history_bars}")
        self.start_timestamp = int(start.astimezone(UTC).timestamp())
        self.bar_interval_ms = bar_interval_ms
        self.history_bars = history_bars
        self._now = time_source
        # a restarted feed (``--anchor-file``) counts from its first start, not from this process's
        self._t0 = time_source() - max(0.0, already_elapsed_s)

    def _elapsed_us(self) -> int:
        return max(0, round((self._now() - self._t0) * 1_000_000))

    def due_count(self) -> int:
        """How many bars (indices ``0 .. n-1``) are due now."""
        return self.history_bars + self._elapsed_us() // (self.bar_interval_ms * 1000)

    def seconds_until_next_bar(self) -> float:
        """Real seconds until one more bar becomes due."""
        period_us = self.bar_interval_ms * 1000
        return (period_us - self._elapsed_us() % period_us) / 1_000_000

    def timestamp_of(self, index: int) -> int:
        """Simulated unix timestamp (bar open time) of bar ``index``."""
        return self.start_timestamp + BAR_SECONDS * index

    def first_index_at_or_after(self, timestamp: int) -> int:
        """The smallest bar index whose timestamp is >= ``timestamp`` (may be negative)."""
        return -((self.start_timestamp - timestamp) // BAR_SECONDS)

    def last_index_at_or_before(self, timestamp: int) -> int:
        """The largest bar index whose timestamp is <= ``timestamp`` (may be negative)."""
        return (timestamp - self.start_timestamp) // BAR_SECONDS

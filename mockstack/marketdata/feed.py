"""The vendor's published history: closes stored compactly, stale and shock effects, active faults.

Storage is one ``array('d')`` of closes per symbol (8 bytes per bar); open, high, low and volume are
re-derived from the walk when served (:meth:`SymbolWalk.bar`). The walk keeps running while a
stale fault withholds bars (the market did not stop), so a resumed feed opens where the market
is now. Withheld bars are never served: stale windows are kept (a handful of index ranges) and
skipped when serving.

Publication is lazy and idempotent: :meth:`MarketFeed.advance` publishes every bar that the clock
says is due; the service's ticker calls it on time and every request calls it first, so answers
never lag behind the clock. All public methods are thread-safe.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from mockstack.common.universe import Instrument
from mockstack.marketdata.clock import BarClock
from mockstack.marketdata.faults import VIEW_KINDS, Fault, FaultKind, FaultSpec, corrupt_view
from mockstack.marketdata.walk import Bar, SymbolWalk


class UnknownSymbol(LookupError):
    def __init__(self, symbol: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown symbol {symbol!r}; known symbols: {', '.join(known)}")
        self.symbol = symbol


class UnknownFault(LookupError):
    def __init__(self, fault_id: str, active: Sequence[str]) -> None:
        listed = ", ".join(active) if active else "none"
        super().__init__(f"no active fault with id {fault_id!r}; active fault ids: {listed}")
        self.fault_id = fault_id


@dataclass(frozen=True)
class FaultState:
    """A fault and how far it has got, as reported by ``GET /admin/faults``."""

    fault: Fault
    first_bar_timestamp: int
    bars_affected: int
    complete: bool


@dataclass(frozen=True)
class ClockStatus:
    bars_published: int
    last_bar_timestamp: int | None
    bar_interval_ms: int
    stale: bool
    stale_symbols: tuple[str, ...]
    simulated_timestamp: int | None
    """Timestamp of the latest bar interval that is due, published or withheld."""


class FeedObserver(Protocol):
    """Told about publications and fault changes (metrics and the event log implement it)."""

    def bars_published(self, new_bars: int, total: int, last_timestamp: int | None) -> None: ...

    def fault_added(self, state: FaultState) -> None: ...

    def fault_completed(self, state: FaultState) -> None: ...

    def fault_cleared(self, state: FaultState, resumes_at: int | None) -> None: ...


class NullObserver:
    def bars_published(self, new_bars: int, total: int, last_timestamp: int | None) -> None:
        return None

    def fault_added(self, state: FaultState) -> None:
        return None

    def fault_completed(self, state: FaultState) -> None:
        return None

    def fault_cleared(self, state: FaultState, resumes_at: int | None) -> None:
        return None


class MarketFeed:
    """Every symbol's published bars on one shared bar grid, plus the faults acting on them."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        *,
        seed: int,
        volatility: float,
        clock: BarClock,
        observer: FeedObserver | None = None,
    ) -> None:
        if not instruments:
            raise ValueError("the feed needs at least one instrument")
        self.instruments = tuple(instruments)
        self.symbols = tuple(i.symbol for i in self.instruments)
        self.clock = clock
        self._observer: FeedObserver = observer if observer is not None else NullObserver()
        self._walks = {i.symbol: SymbolWalk(seed, i.symbol, i.start_price, volatility) for i in self.instruments}
        self._closes: dict[str, array[float]] = {s: array("d") for s in self.symbols}
        self._lock = threading.RLock()
        self._next_index = 0
        self._published = 0
        self._last_published_index: int | None = None
        self._faults: dict[str, Fault] = {}
        self._stale_history: list[Fault] = []  # cleared stale faults, window cut where they ended
        self._fault_seq = 0
        self.advance()

    # -- publication ---------------------------------------------------------------------------

    def advance(self) -> int:
        """Publish every bar that is due; return how many bar intervals were processed."""
        with self._lock:
            due = self.clock.due_count()
            start = self._next_index
            if due <= start:
                return 0
            published_before = self._published
            shocks = [f for f in self._faults.values() if f.kind is FaultKind.SHOCK]
            stale = self._stale_windows()
            ending = [f for f in self._faults.values() if f.end_index is not None and start < f.end_index <= due]
            for index in range(start, due):
                self._publish(index, shocks, stale)
            self._next_index = due
            new = self._published - published_before
            if new:
                last = self._last_published_index
                last_ts = None if last is None else self.clock.timestamp_of(last)
                self._observer.bars_published(new, self._published, last_ts)
            for fault in ending:
                self._observer.fault_completed(self._state(fault))
            return due - start

    def _publish(self, index: int, shocks: Sequence[Fault], stale: Sequence[Fault]) -> None:
        any_published = False
        for symbol, walk in self._walks.items():
            closes = self._closes[symbol]
            prev = closes[index - 1] if index else walk.start_price
            factor = 1.0
            shocked = False
            for f in shocks:
                if f.applies_to(symbol) and f.covers(index):
                    factor *= f.shock_factor()
                    shocked = True
            # A shock bar moves exactly by its factor, so "-8 % over 3 bars" is -8 % close to close.
            closes.append(prev * factor if shocked else walk.next_close(index, prev))
            if not any_published and not any(w.applies_to(symbol) and w.covers(index) for w in stale):
                any_published = True
        if any_published:
            self._published += 1
            self._last_published_index = index

    def _stale_windows(self) -> list[Fault]:
        return [f for f in self._faults.values() if f.kind is FaultKind.STALE] + self._stale_history

    # -- reading -------------------------------------------------------------------------------

    def bars(self, symbol: str, from_ts: int | None = None, to_ts: int | None = None) -> list[Bar]:
        """Bars of ``symbol`` with ``from_ts <= timestamp <= to_ts`` (both optional), as served now.

        Only the index range, a copy of its closes and the fault windows are taken under the lock;
        the bars are built outside it, so a large read does not hold up publication or other readers.
        """
        with self._lock:
            self.advance()
            if symbol not in self._walks:
                raise UnknownSymbol(symbol, self.symbols)
            lo = 0 if from_ts is None else max(0, self.clock.first_index_at_or_after(from_ts))
            hi = self._next_index - 1
            if to_ts is not None:
                hi = min(hi, self.clock.last_index_at_or_before(to_ts))
            if hi < lo:
                return []
            walk = self._walks[symbol]
            closes = self._closes[symbol][lo : hi + 1]
            prev = self._closes[symbol][lo - 1] if lo else walk.start_price
            stale = [
                w
                for w in self._stale_windows()
                if w.applies_to(symbol) and (w.end_index is None or w.end_index > lo) and w.first_index <= hi
            ]
            view = [f for f in self._faults.values() if f.kind in VIEW_KINDS and f.applies_to(symbol)]
        start_ts = self.clock.start_timestamp
        clean: list[Bar] = []
        for offset, close in enumerate(closes):
            index = lo + offset
            if not (stale and any(w.covers(index) for w in stale)):
                clean.append(walk.bar(index, start_ts + 300 * index, prev, close))
            prev = close
        return corrupt_view(clean, view)

    def status(self) -> ClockStatus:
        with self._lock:
            self.advance()
            nxt = self._next_index
            stale_symbols: set[str] = set()
            for f in self._faults.values():
                if f.kind is FaultKind.STALE and f.covers(nxt):
                    stale_symbols.update(self.symbols if f.symbol is None else (f.symbol,))
            last = self._last_published_index
            return ClockStatus(
                bars_published=self._published,
                last_bar_timestamp=None if last is None else self.clock.timestamp_of(last),
                bar_interval_ms=self.clock.bar_interval_ms,
                stale=bool(stale_symbols),
                stale_symbols=tuple(s for s in self.symbols if s in stale_symbols),
                simulated_timestamp=self.clock.timestamp_of(nxt - 1) if nxt else None,
            )

    def stored_bars(self) -> int:
        """Bar intervals processed (published or withheld) per symbol: the size of the close arrays."""
        with self._lock:
            return self._next_index

    # -- faults --------------------------------------------------------------------------------

    def add_fault(self, spec: FaultSpec) -> FaultState:
        """Activate a fault; its window starts with the next bar to be published."""
        with self._lock:
            self.advance()
            if spec.symbol is not None and spec.symbol not in self._walks:
                raise UnknownSymbol(spec.symbol, self.symbols)
            self._fault_seq += 1
            fault = Fault(
                id=f"f{self._fault_seq}",
                kind=spec.kind,
                symbol=spec.symbol,
                bars=spec.bars,
                pct=spec.pct,
                first_index=self._next_index,
            )
            self._faults[fault.id] = fault
            state = self._state(fault)
            self._observer.fault_added(state)
            return state

    def faults(self) -> list[FaultState]:
        with self._lock:
            self.advance()
            return [self._state(f) for f in self._faults.values()]

    def clear_fault(self, fault_id: str) -> FaultState:
        """Clear one fault: view kinds stop corrupting, stale resumes now, a shock stops moving prices."""
        with self._lock:
            self.advance()
            fault = self._faults.get(fault_id)
            if fault is None:
                raise UnknownFault(fault_id, list(self._faults))
            return self._clear(fault)

    def clear_all(self) -> list[FaultState]:
        with self._lock:
            self.advance()
            return [self._clear(f) for f in list(self._faults.values())]

    def _clear(self, fault: Fault) -> FaultState:
        state = self._state(fault)
        del self._faults[fault.id]
        resumes_at: int | None = None
        if fault.kind is FaultKind.STALE:
            cut = self._next_index - fault.first_index
            if fault.bars is None or cut < fault.bars:
                resumes_at = self.clock.timestamp_of(self._next_index)
            if cut > 0:
                self._stale_history.append(replace(fault, bars=cut if fault.bars is None else min(cut, fault.bars)))
        self._observer.fault_cleared(state, resumes_at)
        return state

    def _state(self, fault: Fault) -> FaultState:
        end = fault.end_index
        reached = self._next_index if end is None else min(self._next_index, end)
        return FaultState(
            fault=fault,
            first_bar_timestamp=self.clock.timestamp_of(fault.first_index),
            bars_affected=max(0, reached - fault.first_index),
            complete=end is not None and self._next_index >= end,
        )

"""Market-data quality: every bar is validated before anything trades on it, and the SLA is sticky.

Checks per bar: ``nan`` (any OHLCV value not a finite number), ``negative`` (a price <= 0 or a
negative volume), ``ohlc`` (high < low, or open/close outside [low, high]), ``malformed`` (a field
missing or not a number). Checks on the sequence (M5 cadence, 300 s): ``duplicate`` (timestamp
repeated), ``out_of_order`` (timestamp going back), ``gap`` (more than 300 s between bars). Feed
check: ``stale`` (no new bar for ``stale_polls`` polls *and* ``stale_after`` seconds, so a blocked
loop is not mistaken for a stale feed).

Only valid bars enter a symbol's series; the strategy and the marks read nothing else. Any
violation makes the SLA ``violated`` until :meth:`FeedQuality.replace_history` (``data fetch``)
loaded clean history *after* the last violation and :meth:`FeedQuality.validate` (``data
validate``) confirmed it. The time source is injected, so unit tests never sleep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BAR_SECONDS = 300
MAX_SERIES = 600
MAX_REPORTED = 100


@dataclass(frozen=True)
class Bar:
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Violation:
    symbol: str
    kind: str
    timestamp: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "kind": self.kind, "timestamp": self.timestamp, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Violation:
        ts = d.get("timestamp")
        return cls(str(d["symbol"]), str(d["kind"]), int(ts) if ts is not None else None, str(d.get("detail", "")))


def bar_time(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_bar(symbol: str, raw: Any) -> Bar | Violation:
    """A :class:`Bar`, or a ``malformed`` violation naming the field."""
    if not isinstance(raw, dict):
        return Violation(symbol, "malformed", None, f"bar is not a JSON object: {raw!r}")
    ts = raw.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return Violation(symbol, "malformed", None, f"bar timestamp missing or not a number: {ts!r}")
    values: dict[str, float] = {}
    for name in ("open", "high", "low", "close", "volume"):
        v = raw.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return Violation(symbol, "malformed", int(ts), f"field '{name}' missing or not a number: {v!r}")
        values[name] = float(v)
    return Bar(int(ts), values["open"], values["high"], values["low"], values["close"], values["volume"])


def bar_problems(symbol: str, bar: Bar) -> list[Violation]:
    """Problems of one bar on its own (nan, negative, ohlc)."""
    values = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        return [Violation(symbol, "nan", bar.timestamp, f"{', '.join(bad)} is NaN/inf")]
    out: list[Violation] = []
    neg = [k for k in ("open", "high", "low", "close") if values[k] <= 0]
    if neg or bar.volume < 0:
        what = ", ".join(f"{k}={values[k]}" for k in neg) or f"volume={bar.volume}"
        out.append(Violation(symbol, "negative", bar.timestamp, f"non-positive price/volume: {what}"))
    if bar.high < bar.low:
        out.append(Violation(symbol, "ohlc", bar.timestamp, f"high {bar.high} < low {bar.low}"))
    elif not (bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high):
        out.append(
            Violation(
                symbol,
                "ohlc",
                bar.timestamp,
                f"open {bar.open}/close {bar.close} outside [low {bar.low}, high {bar.high}]",
            )
        )
    return out


def sequence_problems(symbol: str, timestamps: Iterable[int], previous: int | None = None) -> list[Violation]:
    """duplicate / out_of_order / gap along ``timestamps`` (preceded by ``previous`` if given)."""
    out: list[Violation] = []
    prev = previous
    for ts in timestamps:
        if prev is not None:
            step = ts - prev
            if step == 0:
                out.append(Violation(symbol, "duplicate", ts, f"timestamp {bar_time(ts)} repeated"))
            elif step < 0:
                out.append(Violation(symbol, "out_of_order", ts, f"{bar_time(ts)} came after {bar_time(prev)}"))
            elif step > BAR_SECONDS:
                missing = step // BAR_SECONDS - 1 if step % BAR_SECONDS == 0 else step // BAR_SECONDS
                out.append(
                    Violation(
                        symbol,
                        "gap",
                        ts,
                        f"{max(missing, 1)} bar(s) missing between {bar_time(prev)} and {bar_time(ts)}",
                    )
                )
            elif step != BAR_SECONDS:
                out.append(Violation(symbol, "gap", ts, f"{step} s step breaks the {BAR_SECONDS} s cadence"))
        prev = ts if prev is None or ts > prev else prev
    return out


@dataclass(frozen=True)
class IngestResult:
    new_bars: tuple[Bar, ...]
    violations: tuple[Violation, ...]


@dataclass
class _SymbolFeed:
    bars: list[Bar] = field(default_factory=list)
    timestamps: set[int] = field(default_factory=set)
    last_new_at: float = 0.0
    polls_without_new: int = 0
    stale_reported_for: int | None = -1


class FeedQuality:
    """Per-symbol validated series plus the sticky SLA state."""

    def __init__(
        self,
        symbols: Iterable[str],
        clock: Callable[[], float],
        stale_after: float = 1.0,
        stale_polls: int = 5,
    ) -> None:
        self._clock = clock
        self.stale_after = stale_after
        self.stale_polls = stale_polls
        now = clock()
        self.feeds: dict[str, _SymbolFeed] = {s: _SymbolFeed(last_new_at=now) for s in symbols}
        self.violated = False
        self.violations: list[Violation] = []
        self.last_violation_at: float | None = None
        self.fetched_at: float | None = None
        self.fetch_clean = False
        self.bars_checked = 0
        self.known_gaps = 0
        self._seen: set[tuple[str, str, int | None]] = set()

    # --- persistence of the sticky state -------------------------------------------------
    def sticky_state(self) -> dict[str, Any]:
        return {"violated": self.violated, "violations": [v.as_dict() for v in self.violations[-MAX_REPORTED:]]}

    def restore(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        self.violated = bool(state.get("violated"))
        self.violations = [Violation.from_dict(v) for v in state.get("violations", [])]
        if self.violated:
            self.last_violation_at = self._clock()

    # --- recording ---------------------------------------------------------------------
    def _record(self, found: Iterable[Violation]) -> list[Violation]:
        fresh: list[Violation] = []
        for v in found:
            key = (v.symbol, v.kind, v.timestamp)
            if key in self._seen:
                continue
            self._seen.add(key)
            fresh.append(v)
        if fresh:
            self.violated = True
            self.last_violation_at = self._clock()
            self.violations.extend(fresh)
            del self.violations[:-MAX_REPORTED]
        if len(self._seen) > 20000:
            self._seen = {(v.symbol, v.kind, v.timestamp) for v in self.violations}
        return fresh

    def _check(self, symbol: str, raw_bars: list[Any], previous: int | None) -> tuple[list[Bar], list[Violation]]:
        found: list[Violation] = []
        parsed: list[Bar] = []
        for raw in raw_bars:
            item = parse_bar(symbol, raw)
            if isinstance(item, Violation):
                found.append(item)
            else:
                parsed.append(item)
        self.bars_checked += len(raw_bars)
        found.extend(sequence_problems(symbol, [b.timestamp for b in parsed], previous))
        good: list[Bar] = []
        for bar in parsed:
            problems = bar_problems(symbol, bar)
            found.extend(problems)
            if not problems:
                good.append(bar)
        return good, found

    # --- the poll path -----------------------------------------------------------------
    def last_timestamp(self, symbol: str) -> int | None:
        bars = self.feeds[symbol].bars
        return bars[-1].timestamp if bars else None

    def ingest(self, symbol: str, raw_bars: list[Any]) -> IngestResult:
        """Validate one poll's answer (may overlap what is known) and merge the valid bars."""
        feed = self.feeds[symbol]
        last = self.last_timestamp(symbol)
        first_ts = raw_bars[0].get("timestamp") if raw_bars and isinstance(raw_bars[0], dict) else None
        previous = last if last is not None and isinstance(first_ts, int | float) and first_ts > last else None
        good, found = self._check(symbol, raw_bars, previous)
        known = feed.timestamps
        new: list[Bar] = []
        merged = unsorted = False
        for bar in good:
            if bar.timestamp in known:
                continue
            known.add(bar.timestamp)
            merged = True
            if last is None or bar.timestamp > last:
                new.append(bar)
            unsorted = unsorted or bool(feed.bars and feed.bars[-1].timestamp > bar.timestamp)
            feed.bars.append(bar)
        if merged:
            if unsorted:
                feed.bars.sort(key=lambda b: b.timestamp)
            if len(feed.bars) > MAX_SERIES:
                for dropped in feed.bars[:-MAX_SERIES]:
                    feed.timestamps.discard(dropped.timestamp)
                del feed.bars[:-MAX_SERIES]
        if new:
            feed.last_new_at = self._clock()
            feed.polls_without_new = 0
        else:
            feed.polls_without_new += 1
        return IngestResult(tuple(sorted(new, key=lambda b: b.timestamp)), tuple(self._record(found)))

    def poll_failed(self, symbol: str) -> None:
        self.feeds[symbol].polls_without_new += 1

    def check_staleness(self) -> list[Violation]:
        now = self._clock()
        found: list[Violation] = []
        for symbol, feed in self.feeds.items():
            age = now - feed.last_new_at
            if feed.polls_without_new >= self.stale_polls and age >= self.stale_after:
                last = self.last_timestamp(symbol)
                if feed.stale_reported_for != last:
                    feed.stale_reported_for = last
                    found.append(
                        Violation(
                            symbol,
                            "stale",
                            last,
                            f"no new bar for {age:.1f} s ({feed.polls_without_new} polls); last bar {bar_time(last)}",
                        )
                    )
            elif feed.polls_without_new == 0:
                feed.stale_reported_for = -1
        for v in found:  # staleness is per episode, not per bar: bypass the (symbol, kind, ts) de-dup
            self._seen.discard((v.symbol, v.kind, v.timestamp))
        return self._record(found)

    def is_stale(self) -> bool:
        now = self._clock()
        return any(
            f.polls_without_new >= self.stale_polls and now - f.last_new_at >= self.stale_after
            for f in self.feeds.values()
        )

    # --- data fetch / data validate -----------------------------------------------------
    def replace_history(self, histories: dict[str, list[Any]]) -> list[Violation]:
        """``data fetch``: validate each symbol's full history and replace the series with its valid bars."""
        found_all: list[Violation] = []
        for symbol, raw in histories.items():
            good, found = self._check(symbol, raw, None)
            feed = self.feeds.setdefault(symbol, _SymbolFeed(last_new_at=self._clock()))
            last_before = self.last_timestamp(symbol)
            unique: dict[int, Bar] = {}
            for bar in good:
                unique.setdefault(bar.timestamp, bar)
            feed.bars = sorted(unique.values(), key=lambda b: b.timestamp)[-MAX_SERIES:]
            feed.timestamps = {b.timestamp for b in feed.bars}
            if feed.bars and (last_before is None or feed.bars[-1].timestamp > last_before):
                feed.last_new_at = self._clock()
                feed.polls_without_new = 0
            for v in found:
                if v.kind == "gap":
                    # The vendor's re-fetched history confirms bars never existed there (a feed outage,
                    # e.g. after ``stale``): accepted as known, not a corruption. The poll path already
                    # reported it when it happened, and will not report it again.
                    self._seen.add((v.symbol, v.kind, v.timestamp))
                    self.known_gaps += 1
                else:
                    found_all.append(v)
        # a re-fetch re-reports what it finds even if the poll path saw it before
        for v in found_all:
            self._seen.discard((v.symbol, v.kind, v.timestamp))
        fresh = self._record(found_all)
        self.fetched_at = self._clock()
        self.fetch_clean = not found_all
        return fresh

    def validate(self) -> tuple[bool, str]:
        """``data validate``: clear the sticky violation only if a clean fetch came after the last one."""
        if not self.violated:
            if self.is_stale():
                self._record(self.check_staleness())
                return False, "feed is stale"
            return True, "SLA ok"
        if self.fetched_at is None or (self.last_violation_at is not None and self.fetched_at < self.last_violation_at):
            return False, "violations recorded since the last fetch; run 'traderunner data fetch' first"
        if not self.fetch_clean:
            return False, "the last fetch still contained invalid bars"
        if self.is_stale():
            return False, "feed is stale"
        self.violated = False
        self.violations = []
        return True, "fetched history is clean"

    # --- numbers ------------------------------------------------------------------------
    def completeness(self) -> float:
        expected = present = 0
        for feed in self.feeds.values():
            if not feed.bars:
                continue
            expected += (feed.bars[-1].timestamp - feed.bars[0].timestamp) // BAR_SECONDS + 1
            present += len(feed.bars)
        return round(present / expected, 4) if expected else 0.0

    def freshness_seconds(self) -> float:
        now = self._clock()
        return round(max((now - f.last_new_at for f in self.feeds.values()), default=0.0), 3)

    def closes(self, symbol: str, last: int | None = None) -> list[float]:
        bars = self.feeds[symbol].bars
        return [b.close for b in (bars[-last:] if last else bars)]

    def last_close(self, symbol: str) -> tuple[float, int] | None:
        bars = self.feeds[symbol].bars
        return (bars[-1].close, bars[-1].timestamp) if bars else None

    def report(self, checked_at: str) -> dict[str, Any]:
        return {
            "status": "violated" if self.violated else "ok",
            "completeness": self.completeness(),
            "freshness_seconds": self.freshness_seconds(),
            "bars_checked": self.bars_checked,
            "violations": [v.as_dict() for v in self.violations[-MAX_REPORTED:]],
            "checked_at": checked_at,
        }

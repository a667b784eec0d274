"""Fault kinds, fault requests parsed at the edge, and the "view" corruptions of served bars.

A fault applies to the bars *published while it is active*: its window starts at the first bar
published after it was added and covers ``bars`` bars (open-ended when ``bars`` is absent, until
it is cleared). ``symbol`` absent means every symbol.

* ``shock`` and ``stale`` change what is published (see ``feed.py``): a shock is a real move baked
  into the closes, which stays in history after the fault is cleared; a stale feed publishes
  nothing while active and never backfills, so clearing it leaves a gap.
* Every other kind is a **view** (:data:`VIEW_KINDS`): the published history is untouched and the
  corruption is applied when bars are served (:func:`corrupt_view`). Clearing the fault therefore
  serves clean history again (the vendor has "backfilled").

View corruptions, per affected bar:

* ``gap`` -- the bar is omitted (a missing timestamp).
* ``nan`` -- ``close`` is NaN.
* ``negative`` -- every price is negated (``high``/``low`` trade places so high >= low still holds;
  the only thing wrong is the sign).
* ``ohlc`` -- ``high`` and ``low`` trade places, so ``high < low``.
* ``duplicate`` -- the bar is served twice in a row (same timestamp, same values).
* ``out_of_order`` -- the window's bars are paired from its start (1st+2nd, 3rd+4th, ...; a window
  of odd length pairs its last bar with the next bar) and each pair is served in reverse order.
  The first bar of a pair is held back until its partner is published, so a client polling with
  ``from`` sees the pair arrive together, descending.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from mockstack.marketdata.walk import Bar

MAX_FAULT_BARS = 1_000_000
SHOCK_DEFAULT_PCT = -8.0
SHOCK_DEFAULT_BARS = 3


class FaultKind(StrEnum):
    GAP = "gap"
    STALE = "stale"
    NAN = "nan"
    NEGATIVE = "negative"
    OHLC = "ohlc"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    SHOCK = "shock"


VIEW_KINDS = frozenset(
    {
        FaultKind.GAP,
        FaultKind.NAN,
        FaultKind.NEGATIVE,
        FaultKind.OHLC,
        FaultKind.DUPLICATE,
        FaultKind.OUT_OF_ORDER,
    }
)
ACCEPTED_KINDS = ", ".join(k.value for k in FaultKind)
FAULT_FIELDS = ("kind", "symbol", "bars", "pct")


class InvalidFaultField(ValueError):
    """A fault request field is missing or wrong; ``field`` names it and the message says what is accepted."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FaultSpec:
    """A validated ``POST /admin/faults`` body."""

    kind: FaultKind
    symbol: str | None = None
    bars: int | None = None
    pct: float | None = None


@dataclass(frozen=True)
class Fault:
    """An active fault: its request plus the bar window it was given when added."""

    id: str
    kind: FaultKind
    symbol: str | None
    bars: int | None
    pct: float | None
    first_index: int

    @property
    def end_index(self) -> int | None:
        """One past the last bar index of the window; ``None`` while open-ended."""
        return None if self.bars is None else self.first_index + self.bars

    def applies_to(self, symbol: str) -> bool:
        return self.symbol is None or self.symbol == symbol

    def covers(self, index: int) -> bool:
        end = self.end_index
        return self.first_index <= index and (end is None or index < end)

    def shock_factor(self) -> float:
        """The per-bar close multiplier of a shock: ``(1 + pct/100) ** (1/bars)``."""
        if self.kind is not FaultKind.SHOCK or self.pct is None or self.bars is None:
            raise ValueError(f"fault {self.id} is not a shock")
        return float((1.0 + self.pct / 100.0) ** (1.0 / self.bars))


def parse_fault_spec(data: Mapping[str, object], symbols: Sequence[str]) -> FaultSpec:
    """Validate a fault request body; raise :class:`InvalidFaultField` naming the first bad field."""
    for name in data:
        if name not in FAULT_FIELDS:
            raise InvalidFaultField(name, f"unknown field '{name}'; accepted fields: {', '.join(FAULT_FIELDS)}")
    if "kind" not in data:
        raise InvalidFaultField("kind", f"missing field 'kind'; accepted kinds: {ACCEPTED_KINDS}")
    raw_kind = data["kind"]
    try:
        kind = FaultKind(raw_kind) if isinstance(raw_kind, str) else None
    except ValueError:
        kind = None
    if kind is None:
        raise InvalidFaultField("kind", f"unknown fault kind {raw_kind!r}; accepted kinds: {ACCEPTED_KINDS}")

    symbol = data.get("symbol")
    if symbol is not None and (not isinstance(symbol, str) or symbol not in symbols):
        raise InvalidFaultField(
            "symbol",
            f"unknown symbol {symbol!r}; accepted: one of {', '.join(symbols)} (or omit it for every symbol)",
        )

    bars = data.get("bars")
    if bars is not None and (isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= MAX_FAULT_BARS):
        raise InvalidFaultField(
            "bars", f"'bars' must be an integer from 1 to {MAX_FAULT_BARS} (or omitted: until cleared), got {bars!r}"
        )

    pct = data.get("pct")
    if kind is not FaultKind.SHOCK:
        if pct is not None:
            raise InvalidFaultField("pct", f"'pct' applies only to kind 'shock', not {kind.value!r}")
        return FaultSpec(kind=kind, symbol=symbol, bars=bars)
    if pct is None:
        pct = SHOCK_DEFAULT_PCT
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct) or not -100 < pct <= 1000:
        raise InvalidFaultField("pct", f"'pct' must be a number greater than -100 and at most 1000, got {pct!r}")
    return FaultSpec(
        kind=kind,
        symbol=symbol,
        bars=SHOCK_DEFAULT_BARS if bars is None else bars,
        pct=float(pct),
    )


def corrupt_view(clean: Sequence[Bar], faults: Sequence[Fault]) -> list[Bar]:
    """Apply the view faults (already filtered to one symbol) to a run of clean bars in index order."""
    view = [f for f in faults if f.kind in VIEW_KINDS]
    if not view:
        return list(clean)
    out: list[Bar] = []
    leads: set[int] = set()  # positions in `out` whose bar is the first of an out_of_order pair
    for bar in clean:
        hits = [f for f in view if f.covers(bar.index)]
        if not hits:
            out.append(bar)
            continue
        kinds = {f.kind for f in hits}
        if FaultKind.GAP in kinds:
            continue
        corrupted = bar
        if FaultKind.NEGATIVE in kinds:
            corrupted = replace(
                corrupted,
                open=-corrupted.open,
                high=-corrupted.low,
                low=-corrupted.high,
                close=-corrupted.close,
            )
        if FaultKind.OHLC in kinds:
            high, low = corrupted.low, corrupted.high
            if high >= low:  # a flat bar: force the violation
                high = low - max(abs(low) * 0.001, 0.01)
            corrupted = replace(corrupted, high=round(high, 4), low=round(low, 4))
        if FaultKind.NAN in kinds:
            corrupted = replace(corrupted, close=math.nan)
        if any(f.kind is FaultKind.OUT_OF_ORDER and (bar.index - f.first_index) % 2 == 0 for f in hits):
            leads.add(len(out))
        out.append(corrupted)
        if FaultKind.DUPLICATE in kinds:
            out.append(corrupted)
    if not leads:
        return out
    swapped: list[Bar] = []
    pos = 0
    while pos < len(out):
        if pos in leads:
            if pos + 1 < len(out):
                swapped.extend((out[pos + 1], out[pos]))
                pos += 2
                continue
            pos += 1  # held back until its partner is published
            continue
        swapped.append(out[pos])
        pos += 1
    return swapped

"""Published history, every fault kind's effect and its clearing, stale and shock semantics (no sleeping)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mockstack.common.universe import build_universe
from mockstack.marketdata.clock import BarClock, ManualTime
from mockstack.marketdata.config import ConfigError, feed_age, parse_config
from mockstack.marketdata.faults import (
    ACCEPTED_KINDS,
    FaultKind,
    FaultSpec,
    InvalidFaultField,
    parse_fault_spec,
)
from mockstack.marketdata.feed import FaultState, MarketFeed, UnknownFault, UnknownSymbol
from mockstack.marketdata.walk import Bar

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
START_TS = int(START.timestamp())
INTERVAL = 0.2
HISTORY = 10


@dataclass
class Recorder:
    published: list[tuple[int, int, int | None]] = field(default_factory=list)
    added: list[FaultState] = field(default_factory=list)
    completed: list[FaultState] = field(default_factory=list)
    cleared: list[tuple[FaultState, int | None]] = field(default_factory=list)

    def bars_published(self, new_bars: int, total: int, last_timestamp: int | None) -> None:
        self.published.append((new_bars, total, last_timestamp))

    def fault_added(self, state: FaultState) -> None:
        self.added.append(state)

    def fault_completed(self, state: FaultState) -> None:
        self.completed.append(state)

    def fault_cleared(self, state: FaultState, resumes_at: int | None) -> None:
        self.cleared.append((state, resumes_at))


class Market:
    """A feed on a manual clock, plus a twin without faults to compare against."""

    def __init__(self, symbols: int = 3, history: int = HISTORY) -> None:
        self.time = ManualTime()
        self.recorder = Recorder()
        universe = build_universe(42, symbols)
        self.feed = MarketFeed(
            universe,
            seed=42,
            volatility=0.001,
            clock=BarClock(START, 200, history, self.time.now),
            observer=self.recorder,
        )
        self.twin = MarketFeed(universe, seed=42, volatility=0.001, clock=BarClock(START, 200, history, self.time.now))
        self.symbols = self.feed.symbols

    def step(self, bars: int = 1) -> None:
        self.time.advance(INTERVAL * bars)

    def add(self, kind: str, **body: object) -> FaultState:
        return self.feed.add_fault(parse_fault_spec({"kind": kind, **body}, self.symbols))

    def bars(self, symbol: str | None = None, from_ts: int | None = None) -> list[Bar]:
        return self.feed.bars(symbol or self.symbols[0], from_ts)

    def clean(self, symbol: str | None = None) -> list[Bar]:
        return self.twin.bars(symbol or self.symbols[0])


def ts(index: int) -> int:
    return START_TS + 300 * index


def stamps(bars: list[Bar]) -> list[int]:
    return [(b.timestamp - START_TS) // 300 for b in bars]


@pytest.fixture
def market() -> Market:
    return Market()


# -- publication -----------------------------------------------------------------------------------


def test_history_is_published_at_start_and_one_bar_per_interval(market: Market) -> None:
    assert stamps(market.bars()) == list(range(HISTORY))
    market.step(3)
    assert stamps(market.bars()) == list(range(HISTORY + 3))
    status = market.feed.status()
    assert status.bars_published == HISTORY + 3
    assert status.last_bar_timestamp == ts(HISTORY + 2)
    assert status.bar_interval_ms == 200
    assert not status.stale
    assert market.recorder.published[0] == (HISTORY, HISTORY, ts(HISTORY - 1))


def test_from_and_to_select_bars_by_timestamp_inclusively(market: Market) -> None:
    assert stamps(market.feed.bars(market.symbols[0], ts(7))) == [7, 8, 9]
    assert stamps(market.feed.bars(market.symbols[0], ts(7) + 1)) == [8, 9]
    assert stamps(market.feed.bars(market.symbols[0], ts(2), ts(4))) == [2, 3, 4]
    assert stamps(market.feed.bars(market.symbols[0], None, ts(1) - 1)) == [0]
    assert market.feed.bars(market.symbols[0], ts(10)) == []
    assert stamps(market.feed.bars(market.symbols[0], ts(-50))) == list(range(HISTORY))
    assert market.feed.bars(market.symbols[0], None, ts(-1)) == []


def test_unknown_symbol_is_refused(market: Market) -> None:
    with pytest.raises(UnknownSymbol, match="NOPE"):
        market.feed.bars("NOPE")


def test_no_history_means_no_bars_until_the_first_interval() -> None:
    market = Market(history=0)
    assert market.bars() == []
    assert market.feed.status().last_bar_timestamp is None
    market.step()
    assert stamps(market.bars()) == [0]


# -- view faults -----------------------------------------------------------------------------------


def test_fault_window_starts_with_the_next_bar_published(market: Market) -> None:
    state = market.add("nan")
    assert state.first_bar_timestamp == ts(HISTORY)
    assert state.bars_affected == 0 and not state.complete
    market.step(2)
    assert market.bars()[:HISTORY] == market.clean()[:HISTORY]
    assert [math.isnan(b.close) for b in market.bars()[HISTORY:]] == [True, True]


def test_gap_omits_bars_and_clearing_backfills(market: Market) -> None:
    fault = market.add("gap", symbol=market.symbols[0], bars=2)
    market.step(4)
    assert stamps(market.bars()) == [*range(HISTORY), HISTORY + 2, HISTORY + 3]
    assert market.bars(market.symbols[1]) == market.clean(market.symbols[1])
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_nan_makes_close_nan_and_clearing_restores(market: Market) -> None:
    fault = market.add("nan", symbol=market.symbols[0])
    market.step(3)
    bad = market.bars()[HISTORY:]
    assert all(math.isnan(b.close) for b in bad)
    assert all(math.isfinite(b.open) and math.isfinite(b.high) for b in bad)
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_negative_flips_the_sign_only(market: Market) -> None:
    fault = market.add("negative", bars=1)
    market.step(2)
    bad, after = market.bars()[HISTORY], market.bars()[HISTORY + 1]
    assert all(v < 0 for v in (bad.open, bad.high, bad.low, bad.close))
    assert bad.high >= bad.low
    clean = market.clean()[HISTORY]
    assert (bad.open, bad.close) == (-clean.open, -clean.close)
    assert after == market.clean()[HISTORY + 1]
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_ohlc_makes_high_below_low(market: Market) -> None:
    fault = market.add("ohlc", bars=2)
    market.step(3)
    bars = market.bars()
    assert all(b.high < b.low for b in bars[HISTORY : HISTORY + 2])
    assert bars[HISTORY + 2].high > bars[HISTORY + 2].low
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_duplicate_repeats_a_timestamp(market: Market) -> None:
    fault = market.add("duplicate", bars=1)
    market.step(2)
    assert stamps(market.bars())[HISTORY - 1 :] == [HISTORY - 1, HISTORY, HISTORY, HISTORY + 1]
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_out_of_order_swaps_pairs_and_holds_the_first_back_until_its_partner(market: Market) -> None:
    fault = market.add("out_of_order", bars=3)
    market.step(1)
    assert stamps(market.bars())[HISTORY - 1 :] == [HISTORY - 1]  # bar 10 held back
    market.step(1)
    assert stamps(market.bars())[HISTORY - 1 :] == [HISTORY - 1, HISTORY + 1, HISTORY]
    market.step(3)  # bar 12 is the last of the window: it is paired with 13 (outside it)
    assert stamps(market.bars())[HISTORY:] == [HISTORY + 1, HISTORY, HISTORY + 3, HISTORY + 2, HISTORY + 4]
    market.feed.clear_fault(fault.fault.id)
    assert market.bars() == market.clean()


def test_incremental_poller_sees_every_view_fault(market: Market) -> None:
    """The traderunner polls with from = last seen timestamp + 1: each corruption must reach it."""
    sym = market.symbols[0]
    last = ts(HISTORY - 1)
    seen: dict[str, list[list[int]]] = {}
    for kind in ("gap", "duplicate", "out_of_order"):
        fault = market.add(kind, symbol=sym, bars=1)
        polls: list[list[int]] = []
        for _ in range(3):
            market.step()
            got = market.bars(sym, last + 1)
            polls.append(stamps(got))
            if got:
                last = max(b.timestamp for b in got)
        seen[kind] = polls
        market.feed.clear_fault(fault.fault.id)
    assert seen["gap"] == [[], [11], [12]]  # 10 never arrives: 9 -> 11 is a gap
    assert seen["duplicate"] == [[13, 13], [14], [15]]
    assert seen["out_of_order"] == [[], [17, 16], [18]]


def test_view_faults_can_target_one_symbol_or_all(market: Market) -> None:
    market.add("nan", symbol=market.symbols[1])
    market.step()
    assert math.isfinite(market.bars(market.symbols[0])[-1].close)
    assert math.isnan(market.bars(market.symbols[1])[-1].close)
    market.add("ohlc")
    market.step()
    assert all(market.bars(s)[-1].high < market.bars(s)[-1].low for s in market.symbols)


def test_clear_all_serves_clean_history(market: Market) -> None:
    for kind in ("gap", "nan", "negative", "ohlc", "duplicate", "out_of_order"):
        market.add(kind, bars=2)
        market.step(2)
    assert market.bars() != market.clean()
    cleared = market.feed.clear_all()
    assert len(cleared) == 6
    assert market.feed.faults() == []
    for s in market.symbols:
        assert market.bars(s) == market.clean(s)


# -- stale -----------------------------------------------------------------------------------------


def test_stale_publishes_nothing_and_resumes_at_current_time_leaving_a_gap(market: Market) -> None:
    fault = market.add("stale")
    market.step(5)
    status = market.feed.status()
    assert status.stale and status.stale_symbols == market.symbols
    assert status.bars_published == HISTORY
    assert status.last_bar_timestamp == ts(HISTORY - 1)
    assert status.simulated_timestamp == ts(HISTORY + 4)
    for s in market.symbols:
        assert stamps(market.bars(s)) == list(range(HISTORY))
    state = market.feed.clear_fault(fault.fault.id)
    assert state.bars_affected == 5
    assert market.recorder.cleared[-1][1] == ts(HISTORY + 5)
    assert not market.feed.status().stale
    market.step()
    assert stamps(market.bars()) == [*range(HISTORY), HISTORY + 5]  # never backfilled
    # the market kept moving while the feed was stale: the resumed bar opens where the walk is now
    resumed = market.bars()[-1]
    assert resumed == market.clean()[HISTORY + 5]
    assert market.feed.status().bars_published == HISTORY + 1


def test_stale_for_some_bars_resumes_by_itself(market: Market) -> None:
    market.add("stale", bars=2)
    market.step(1)
    assert market.feed.status().stale
    market.step(2)
    assert not market.feed.status().stale
    assert stamps(market.bars())[HISTORY:] == [HISTORY + 2]
    assert [s.fault.kind for s in market.recorder.completed] == [FaultKind.STALE]


def test_stale_on_one_symbol_leaves_the_others_flowing(market: Market) -> None:
    fault = market.add("stale", symbol=market.symbols[2])
    market.step(2)
    status = market.feed.status()
    assert status.stale_symbols == (market.symbols[2],)
    assert status.bars_published == HISTORY + 2
    assert len(market.bars(market.symbols[0])) == HISTORY + 2
    assert len(market.bars(market.symbols[2])) == HISTORY
    market.feed.clear_fault(fault.fault.id)
    market.step()
    assert stamps(market.bars(market.symbols[2]))[HISTORY:] == [HISTORY + 2]


# -- shock -----------------------------------------------------------------------------------------


def test_shock_of_minus_8_pct_over_3_bars(market: Market) -> None:
    state = market.add("shock", pct=-8, bars=3)
    assert state.fault.pct == -8.0 and state.fault.bars == 3
    market.step(3)
    for s in market.symbols:
        bars = market.bars(s)
        before, after = bars[HISTORY - 1].close, bars[HISTORY + 2].close
        assert after / before == pytest.approx(0.92, abs=1e-5)
        # the move is spread evenly: each bar about -2.74 %
        for prev, bar in zip(bars[HISTORY - 1 : HISTORY + 2], bars[HISTORY : HISTORY + 3], strict=True):
            assert bar.close / prev.close == pytest.approx(0.92 ** (1 / 3), abs=1e-5)
            assert bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close)


def test_shock_defaults_and_stays_in_history_after_clearing(market: Market) -> None:
    state = market.add("shock", symbol=market.symbols[0])
    assert (state.fault.pct, state.fault.bars) == (-8.0, 3)
    market.step(5)
    shocked = market.bars()
    market.feed.clear_fault(state.fault.id)
    assert market.bars() == shocked
    assert shocked[HISTORY + 2].close / shocked[HISTORY - 1].close == pytest.approx(0.92, abs=1e-5)
    # later bars walk on from the shocked level
    market.step()
    assert market.bars()[-1].open == shocked[-1].close
    assert market.bars(market.symbols[1]) == market.clean(market.symbols[1])


def test_clearing_a_shock_midway_stops_the_move(market: Market) -> None:
    state = market.add("shock", pct=+10, bars=4)
    market.step(2)
    market.feed.clear_fault(state.fault.id)
    market.step(2)
    bars = market.bars()
    assert bars[HISTORY + 1].close / bars[HISTORY - 1].close == pytest.approx(1.1**0.5, abs=1e-5)
    assert abs(bars[HISTORY + 3].close / bars[HISTORY + 1].close - 1) < 0.01


# -- fault registry ----------------------------------------------------------------------------------


def test_fault_progress_listing_and_events(market: Market) -> None:
    a = market.add("nan", bars=2)
    b = market.add("gap", symbol=market.symbols[1])
    assert (a.fault.id, b.fault.id) == ("f1", "f2")
    market.step(3)
    listed = {s.fault.id: s for s in market.feed.faults()}
    assert (listed["f1"].bars_affected, listed["f1"].complete) == (2, True)
    assert (listed["f2"].bars_affected, listed["f2"].complete) == (3, False)
    assert [s.fault.id for s in market.recorder.completed] == ["f1"]
    assert [s.fault.id for s in market.recorder.added] == ["f1", "f2"]
    market.feed.clear_fault("f1")
    assert [s.fault.id for s in market.feed.faults()] == ["f2"]
    with pytest.raises(UnknownFault, match="f1"):
        market.feed.clear_fault("f1")


def test_add_fault_refuses_unknown_symbol(market: Market) -> None:
    with pytest.raises(UnknownSymbol):
        market.feed.add_fault(FaultSpec(FaultKind.NAN, symbol="NOPE"))


# -- parsing the request body ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field_name", "fragment"),
    [
        ({}, "kind", "accepted kinds: gap, stale, nan, negative, ohlc, duplicate, out_of_order, shock"),
        ({"kind": "meteor"}, "kind", ACCEPTED_KINDS),
        ({"kind": 3}, "kind", "unknown fault kind 3"),
        ({"kind": "nan", "symbol": "NOPE"}, "symbol", "accepted: one of"),
        ({"kind": "nan", "bars": 0}, "bars", "integer from 1"),
        ({"kind": "nan", "bars": "3"}, "bars", "integer from 1"),
        ({"kind": "nan", "bars": True}, "bars", "integer from 1"),
        ({"kind": "nan", "pct": 5}, "pct", "only to kind 'shock'"),
        ({"kind": "shock", "pct": -100}, "pct", "greater than -100"),
        ({"kind": "shock", "pct": "big"}, "pct", "must be a number"),
        ({"kind": "nan", "colour": "red"}, "colour", "accepted fields: kind, symbol, bars, pct"),
    ],
)
def test_bad_fault_requests_name_the_field_and_what_is_accepted(
    body: dict[str, object], field_name: str, fragment: str
) -> None:
    with pytest.raises(InvalidFaultField) as info:
        parse_fault_spec(body, ("AAA", "BBB"))
    assert info.value.field == field_name
    assert fragment in info.value.message


def test_good_fault_requests_parse() -> None:
    assert parse_fault_spec({"kind": "gap"}, ("AAA",)) == FaultSpec(FaultKind.GAP)
    assert parse_fault_spec({"kind": "stale", "symbol": "AAA", "bars": 4}, ("AAA",)) == FaultSpec(
        FaultKind.STALE, "AAA", 4
    )
    assert parse_fault_spec({"kind": "shock", "pct": 5, "symbol": None}, ("AAA",)) == FaultSpec(
        FaultKind.SHOCK, None, 3, 5.0
    )


# -- restarts ---------------------------------------------------------------------------------------


def test_a_restarted_feed_with_an_anchor_file_carries_on_where_the_first_one_would_be(tmp_path: Path) -> None:
    """A feed restarted 2 s (10 intervals) after its first start publishes the bars due by now, the same bars
    the first process would serve, instead of replaying from bar 0 timestamps its clients already have."""
    anchor = tmp_path / "state" / "anchor.json"
    wall = ManualTime(1_700_000_000.0)
    assert feed_age(anchor, wall.now) == 0.0  # the first start writes the anchor
    first_time = ManualTime()
    universe = build_universe(42, 3)
    first = MarketFeed(universe, seed=42, volatility=0.001, clock=BarClock(START, 200, HISTORY, first_time.now))
    wall.advance(2.0)
    first_time.advance(2.0)
    age = feed_age(anchor, wall.now)
    assert age == pytest.approx(2.0)
    restarted = MarketFeed(
        universe, seed=42, volatility=0.001, clock=BarClock(START, 200, HISTORY, ManualTime(50.0).now, age)
    )
    symbol = first.symbols[0]
    assert stamps(restarted.bars(symbol)) == list(range(HISTORY + 10))
    assert restarted.bars(symbol) == first.bars(symbol)
    without_anchor = MarketFeed(universe, seed=42, volatility=0.001, clock=BarClock(START, 200, HISTORY, wall.now))
    assert stamps(without_anchor.bars(symbol))[-1] == HISTORY - 1  # what the feed did before: it rewound


def test_an_unreadable_anchor_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    anchor.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"anchor file .*anchor.json cannot be read.*delete it"):
        feed_age(anchor, ManualTime(1.0).now)
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="file/anchor.json cannot be read .*Not a directory.*another path"):
        feed_age(blocked / "anchor.json", ManualTime(1.0).now)
    with pytest.raises(ConfigError, match="cannot be written"):  # /proc takes no new files, even from root
        feed_age(Path("/proc/drill-marketdata-anchor.json"), ManualTime(1.0).now)
    assert parse_config(["--anchor-file", str(anchor)], {}).anchor_file == anchor
    assert parse_config([], {"MARKETDATA_ANCHOR_FILE": str(anchor)}).anchor_file == anchor
    assert parse_config([], {}).anchor_file is None

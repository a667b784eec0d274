"""Data quality: each bad-bar kind, staleness, stickiness and the fetch + validate recovery."""

from __future__ import annotations

from typing import Any

import pytest

from mockstack.traderunner.quality import BAR_SECONDS, FeedQuality

T0 = 1_767_623_400


def bar(i: int, close: float = 100.0, **over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "timestamp": T0 + i * BAR_SECONDS,
        "open": close,
        "high": close + 1,
        "low": close - 1,
        "close": close,
        "volume": 1000,
    }
    b.update(over)
    return b


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(clock: Clock | None = None) -> FeedQuality:
    return FeedQuality(["ABC"], clock or Clock(), stale_after=1.0, stale_polls=5)


def test_clean_bars_are_accepted_and_sla_stays_ok() -> None:
    q = feed()
    r = q.ingest("ABC", [bar(i) for i in range(10)])
    assert len(r.new_bars) == 10 and not r.violations and not q.violated
    # an overlapping poll adds only the new bar
    r = q.ingest("ABC", [bar(i) for i in range(7, 11)])
    assert [b.timestamp for b in r.new_bars] == [T0 + 10 * BAR_SECONDS]
    assert q.report("now")["status"] == "ok" and q.completeness() == 1.0


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (bar(3, close=float("nan")), "nan"),
        (bar(3, close=-5.0, low=-6.0, open=-5.0), "negative"),
        (bar(3, high=90.0, low=110.0), "ohlc"),
        (bar(3, close=150.0, open=100.0, high=101.0, low=99.0), "ohlc"),
        ({"timestamp": T0 + 3 * BAR_SECONDS, "open": "x"}, "malformed"),
    ],
)
def test_each_bad_bar_kind_is_a_violation_and_never_enters_the_series(bad: dict[str, Any], kind: str) -> None:
    q = feed()
    r = q.ingest("ABC", [bar(0), bar(1), bar(2), bad, bar(4)])
    assert [v.kind for v in r.violations][0] == kind  # (a malformed bar also leaves a gap behind)
    assert q.violated
    assert T0 + 3 * BAR_SECONDS not in [b.timestamp for b in q.feeds["ABC"].bars]
    assert all(c == 100.0 for c in q.closes("ABC"))  # the bad close is never a mark


@pytest.mark.parametrize(
    ("timestamps", "kind"),
    [
        ([0, 1, 2, 2, 3], "duplicate"),
        ([0, 1, 3, 2, 4], "out_of_order"),
        ([0, 1, 2, 5, 6], "gap"),
    ],
)
def test_sequence_violations(timestamps: list[int], kind: str) -> None:
    q = feed()
    r = q.ingest("ABC", [bar(i) for i in timestamps])
    assert kind in [v.kind for v in r.violations]


def test_gap_against_what_was_already_known() -> None:
    q = feed()
    q.ingest("ABC", [bar(0), bar(1)])
    r = q.ingest("ABC", [bar(4), bar(5)])  # answer starts after the known last bar
    assert [v.kind for v in r.violations] == ["gap"] and "2 bar(s) missing" in r.violations[0].detail


def test_violation_is_reported_once_even_if_seen_in_every_poll() -> None:
    q = feed()
    bad = bar(2, close=float("nan"))
    assert len(q.ingest("ABC", [bar(0), bar(1), bad]).violations) == 1
    assert q.ingest("ABC", [bar(1), bad, bar(3)]).violations == ()


def test_staleness_needs_both_polls_and_time() -> None:
    clock = Clock()
    q = feed(clock)
    q.ingest("ABC", [bar(0)])
    for _ in range(5):  # five empty polls, but no time passed (a blocked loop is not a stale feed)
        q.ingest("ABC", [bar(0)])
    assert q.check_staleness() == []
    clock.now += 1.5
    found = q.check_staleness()
    assert [v.kind for v in found] == ["stale"] and q.violated
    assert q.check_staleness() == []  # once per stale episode
    assert q.report("t")["freshness_seconds"] == 1.5


def test_violation_is_sticky_until_fetch_then_validate() -> None:
    clock = Clock()
    q = feed(clock)
    q.ingest("ABC", [bar(0), bar(1, close=float("nan"))])
    assert q.violated
    # the feed is clean again, but the SLA stays violated
    q.ingest("ABC", [bar(0), bar(1), bar(2)])
    assert q.violated
    ok, why = q.validate()
    assert not ok and "data fetch" in why
    clock.now += 0.1
    q.replace_history({"ABC": [bar(i) for i in range(3)]})
    ok, why = q.validate()
    assert ok and not q.violated and q.report("t")["status"] == "ok"


def test_fetch_that_still_has_bad_bars_does_not_recover() -> None:
    clock = Clock()
    q = feed(clock)
    q.ingest("ABC", [bar(0), bar(1, close=float("nan"))])
    clock.now += 0.1
    q.replace_history({"ABC": [bar(0), bar(1, close=float("nan")), bar(2)]})
    ok, _ = q.validate()
    assert not ok and q.violated


def test_vendor_confirmed_gap_after_stale_is_accepted_by_fetch() -> None:
    clock = Clock()
    q = feed(clock)
    q.ingest("ABC", [bar(0), bar(1)])
    q.ingest("ABC", [bar(1), bar(5)])  # gap reported live
    assert q.violated
    clock.now += 0.1
    q.replace_history({"ABC": [bar(0), bar(1), bar(5), bar(6)]})
    assert q.validate()[0] and q.known_gaps == 1
    # and the poll path does not re-report the same gap
    assert q.ingest("ABC", [bar(1), bar(5), bar(6), bar(7)]).violations == ()


def test_sticky_state_survives_a_restart() -> None:
    q = feed()
    q.ingest("ABC", [bar(0), bar(1, close=float("nan"))])
    state = q.sticky_state()
    q2 = feed()
    q2.restore(state)
    assert q2.violated and q2.violations[0].kind == "nan"
    assert not q2.validate()[0]

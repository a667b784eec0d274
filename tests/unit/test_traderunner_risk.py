"""Risk rules, daily P&L with its UTC-midnight reset, and the kill switch (trip, reset, audit)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from freezegun import freeze_time

from mockstack.common.logging import EventLog
from mockstack.traderunner import exports
from mockstack.traderunner.config import RiskConfig
from mockstack.traderunner.metrics import Metrics
from mockstack.traderunner.risk import (
    ApprovalError,
    KillSwitch,
    check_order,
    daily_pnl,
    is_risk_reducing,
    kill_switch_doc,
)
from mockstack.traderunner.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_in(tmp_path)


def buy_and_fill(store: Store, key: str, symbol: str, qty: int, price: float) -> None:
    store.insert_order(key, symbol, "buy", qty, price, 0.0)
    store.apply_fill(key, f"F-{key}", "O-1", qty, price, 0.0)


class Harness:
    def __init__(self, tmp_path: Path, store: Store, config: RiskConfig) -> None:
        self.stream = io.StringIO()
        self.log = EventLog("traderunner", stream=self.stream)
        self.metrics = Metrics()
        self.cancel_calls = 0
        self.tmp_path = tmp_path

        def export() -> None:
            exports.write_json_atomic(tmp_path / exports.KILL_SWITCH, kill_switch_doc(store.kill_switch()))

        def cancel() -> int:
            self.cancel_calls += 1
            return 2

        self.kill = KillSwitch(store, config, self.log, self.metrics, export, cancel)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def metric(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name)


# --- pre-trade checks ------------------------------------------------------------------------------
CFG = RiskConfig(max_daily_loss=1000, max_position=20, max_orders_per_minute=5, allow_risk_reducing_when_killed=False)


def test_order_within_limits_passes() -> None:
    assert check_order(CFG, kill_active=False, side="buy", qty=10, exposure=5, orders_last_minute=0).allowed


def test_max_position_blocks_increases_but_not_reductions() -> None:
    d = check_order(CFG, kill_active=False, side="buy", qty=10, exposure=15, orders_last_minute=0)
    assert not d.allowed and d.reason == "max_position"
    assert check_order(CFG, kill_active=False, side="sell", qty=10, exposure=25, orders_last_minute=0).allowed
    d = check_order(CFG, kill_active=False, side="sell", qty=30, exposure=5, orders_last_minute=0)
    assert not d.allowed and d.reason == "max_position"  # flips to -25


def test_order_rate_limit() -> None:
    d = check_order(CFG, kill_active=False, side="buy", qty=1, exposure=0, orders_last_minute=5)
    assert not d.allowed and d.reason == "rate_limit"


def test_kill_switch_blocks_everything_unless_risk_reducing_is_allowed() -> None:
    d = check_order(CFG, kill_active=True, side="sell", qty=2, exposure=10, orders_last_minute=0)
    assert not d.allowed and d.reason == "kill_switch"
    allow = RiskConfig(allow_risk_reducing_when_killed=True)
    assert check_order(allow, kill_active=True, side="sell", qty=2, exposure=10, orders_last_minute=0).allowed
    d = check_order(allow, kill_active=True, side="buy", qty=2, exposure=10, orders_last_minute=0)
    assert not d.allowed and d.reason == "kill_switch"


@pytest.mark.parametrize(
    ("position", "side", "qty", "expected"),
    [
        (10, "sell", 4, True),
        (10, "sell", 10, True),
        (10, "sell", 11, False),
        (10, "buy", 1, False),
        (-5, "buy", 5, True),
        (0, "sell", 1, False),
    ],
)
def test_is_risk_reducing(position: int, side: str, qty: int, expected: bool) -> None:
    assert is_risk_reducing(position, side, qty) is expected


# --- daily P&L -------------------------------------------------------------------------------------
def test_daily_pnl_is_realized_plus_unrealized_at_the_last_valid_close(store: Store) -> None:
    with freeze_time("2026-01-05 10:00:00"):
        daily_pnl(store)  # day baseline at zero
        buy_and_fill(store, "k1", "ABC", 10, 100.0)
        store.insert_order("k2", "ABC", "sell", 4, 110.0, 0.0)
        store.apply_fill("k2", "F-k2", "O-2", 4, 110.0, 0.0)
        store.set_marks({"ABC": (90.0, 1)})
        pnl = daily_pnl(store)
    assert pnl.realized == pytest.approx(40.0)  # 4 x (110 - 100)
    assert pnl.unrealized == pytest.approx(-60.0)  # 6 x (90 - 100)
    assert pnl.total == pytest.approx(-20.0)


def test_daily_pnl_resets_at_the_utc_date_boundary(store: Store) -> None:
    with freeze_time("2026-01-05 23:59:58"):
        daily_pnl(store)
        buy_and_fill(store, "k1", "ABC", 10, 100.0)
        store.set_marks({"ABC": (80.0, 1)})
        assert daily_pnl(store).total == pytest.approx(-200.0)
    with freeze_time("2026-01-06 00:00:01"):
        pnl = daily_pnl(store)
        assert (pnl.date, pnl.total) == ("2026-01-06", pytest.approx(0.0))
        store.set_marks({"ABC": (75.0, 2)})
        assert daily_pnl(store).total == pytest.approx(-50.0)  # only today's move counts
    with freeze_time("2026-01-05 23:59:59"):  # the old day keeps its own baseline
        assert daily_pnl(store).total == pytest.approx(-250.0)


# --- kill switch -----------------------------------------------------------------------------------
def test_kill_switch_trips_on_loss_breach(tmp_path: Path, store: Store) -> None:
    h = Harness(tmp_path, store, RiskConfig(max_daily_loss=100))
    with freeze_time("2026-01-05 12:00:00"):
        daily_pnl(store)
        buy_and_fill(store, "k1", "ABC", 10, 100.0)
        store.set_marks({"ABC": (91.0, 1)})
        assert not h.kill.check_loss(daily_pnl(store))  # -90: within the limit
        store.set_marks({"ABC": (90.0, 1)})
        assert h.kill.check_loss(daily_pnl(store))  # -100: at the limit trips
        assert not h.kill.check_loss(daily_pnl(store))  # already active: no second trip
    state = store.kill_switch()
    assert state.active and state.trips == 1 and state.activated_by == "risk"
    assert "breached max_daily_loss" in (state.reason or "")
    assert h.cancel_calls == 1
    event = [e for e in h.events() if e["event"] == "kill_switch"]
    assert len(event) == 1 and "Kill switch activated" in str(event[0]["msg"]) and "-100.00" in str(event[0]["msg"])
    doc = json.loads((tmp_path / exports.KILL_SWITCH).read_text())
    assert doc["active"] is True and doc["activated_by"] == "risk"
    assert h.metric("traderunner_kill_switch_active") == 1
    assert h.metric("traderunner_kill_switch_trips_total") == 1
    assert [a.action for a in store.audit_entries()] == ["kill_switch_trip"]


def test_manual_trip_and_approved_reset_are_audited(tmp_path: Path, store: Store) -> None:
    h = Harness(tmp_path, store, RiskConfig())
    with freeze_time("2026-01-05 12:00:00"):
        assert h.kill.trip("manual: drill", "carol")
        with pytest.raises(ApprovalError):
            h.kill.reset("", "because", daily_pnl(store))
        with pytest.raises(ApprovalError):
            h.kill.reset("dave", "  ", daily_pnl(store))
        assert store.kill_switch().active
        assert h.kill.reset("dave", "drill over", daily_pnl(store)) is None
    assert not store.kill_switch().active
    audit = store.audit_entries()
    assert [(a.action, a.actor, a.reason) for a in audit] == [
        ("kill_switch_trip", "carol", "manual: drill"),
        ("kill_switch_reset", "dave", "drill over"),
    ]
    reset = [e for e in h.events() if e["event"] == "kill_switch_reset"]
    assert "Kill switch reset" in str(reset[0]["msg"]) and "dave" in str(reset[0]["msg"])
    assert json.loads((tmp_path / exports.KILL_SWITCH).read_text())["active"] is False
    assert h.metric("traderunner_kill_switch_active") == 0


def test_reset_on_a_breached_day_rearms_below_the_accepted_loss(tmp_path: Path, store: Store) -> None:
    h = Harness(tmp_path, store, RiskConfig(max_daily_loss=100))
    with freeze_time("2026-01-05 12:00:00"):
        daily_pnl(store)
        buy_and_fill(store, "k1", "ABC", 10, 100.0)
        store.set_marks({"ABC": (85.0, 1)})
        assert h.kill.check_loss(daily_pnl(store))  # -150
        level = h.kill.reset("erin", "accepted", daily_pnl(store))
        assert level == pytest.approx(-250.0)
        assert not h.kill.check_loss(daily_pnl(store))  # does not re-trip at once
        store.set_marks({"ABC": (75.0, 1)})  # -250
        assert h.kill.check_loss(daily_pnl(store))
    with freeze_time("2026-01-06 00:00:01"):  # the re-armed level is for that day only
        h.kill.reset("erin", "new day", daily_pnl(store))
        store.set_marks({"ABC": (65.0, 1)})  # -100 today
        assert h.kill.check_loss(daily_pnl(store))


class _FileAtEachLogLine(io.StringIO):
    """A log stream that notes what kill_switch.json says at the moment each line is written."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.seen: list[tuple[str, object]] = []

    def write(self, text: str) -> int:
        if text.strip():
            event = json.loads(text)["event"]
            active = json.loads(self.path.read_text())["active"] if self.path.exists() else None
            self.seen.append((event, active))
        return super().write(text)


def test_the_state_file_says_it_before_the_log_line_does(tmp_path: Path, store: Store) -> None:
    """Whoever acts on the "Kill switch activated" line (an operator, a runbook step, a test) reads
    kill_switch.json next: it must already say so. A loaded CI machine caught the file one loop behind."""
    h = Harness(tmp_path, store, RiskConfig())
    stream = _FileAtEachLogLine(tmp_path / exports.KILL_SWITCH)
    h.kill.log = EventLog("traderunner", stream=stream)
    with freeze_time("2026-01-05 12:00:00"):
        assert h.kill.trip("manual: drill", "carol")
        assert h.kill.reset("dave", "drill over", daily_pnl(store)) is None
    assert stream.seen == [("kill_switch", True), ("kill_switch_reset", False)]

"""Clock, timeline and the metrics computed from it (no sleeping: ManualClock and freezegun)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from harness.clock import Clock, EventKind, ManualClock, Measurement, Targets, Timeline, judge, parse_timestamp
from harness.errors import InputError

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=10.0, wall_start=T0)
    assert clock.now() == 10.0
    clock.sleep(1.5)
    clock.advance(0.5)
    assert clock.now() == 12.0
    assert clock.wall() == T0 + timedelta(seconds=2)
    assert clock.sleeps == [1.5]


def test_default_clock_follows_freezegun() -> None:
    with freeze_time("2026-01-05 14:30:00", tick=False) as frozen:
        clock = Clock()
        start = clock.now()
        frozen.tick(3)
        assert clock.now() - start == pytest.approx(3.0)
        assert clock.wall() == datetime(2026, 1, 5, 14, 30, 3, tzinfo=UTC)


def test_default_clock_is_monotonic_time() -> None:
    clock = Clock()
    assert abs(clock.now() - time.monotonic()) < 1.0


def test_parse_timestamp_accepts_log_ts_and_naive_utc() -> None:
    assert parse_timestamp("2026-01-05T14:30:00.123Z") == T0 + timedelta(milliseconds=123)
    assert parse_timestamp("2026-01-05T14:30:00") == T0
    assert parse_timestamp("2026-01-05T15:30:00+01:00") == T0
    with pytest.raises(InputError, match="not an ISO-8601 timestamp"):
        parse_timestamp("yesterday")


def test_wall_timestamps_map_onto_the_monotonic_scale() -> None:
    clock = ManualClock(start=100.0, wall_start=T0)
    assert clock.monotonic_at("2026-01-05T14:30:02.500Z") == pytest.approx(102.5)
    assert clock.monotonic_at(T0 - timedelta(seconds=1)) == pytest.approx(99.0)
    assert clock.wall_at(103.0) == T0 + timedelta(seconds=3)


def scenario_timeline() -> tuple[Timeline, ManualClock]:
    clock = ManualClock(start=0.0, wall_start=T0)
    tl = Timeline(clock, name="kill switch drill")
    clock.advance(1.0)
    tl.record(EventKind.FAULT_INJECTED, "price shock -8%", fault_id="price_shock-1")
    clock.advance(2.0)
    tl.record(EventKind.ALERT_FIRED, "KillSwitchActive P0")
    clock.advance(1.0)
    tl.record(EventKind.DETECTED, "log kill_switch")
    clock.advance(6.0)
    tl.record(EventKind.RECOVERED, "kill switch reset, trading resumed")
    return tl, clock


def test_mttd_and_rto_are_computed_from_events() -> None:
    tl, _ = scenario_timeline()
    assert tl.mttd() == pytest.approx(2.0)  # first detection (the alert) - first fault
    assert tl.rto() == pytest.approx(9.0)


def test_time_to_kill_uses_log_timestamps() -> None:
    tl, _ = scenario_timeline()
    # the service logged the kill switch at +2.2 s and its last order at +2.35 s (wall clock)
    tl.record_at(EventKind.KILL_SWITCH_ACTIVATED, "Kill switch activated", wall="2026-01-05T14:30:02.200Z")
    tl.record_at(EventKind.LAST_ORDER, "order o-17 sent", wall=T0 + timedelta(seconds=2.35))
    assert tl.time_to_kill() == pytest.approx(0.15)
    kinds = [e.kind for e in tl.events]
    assert kinds.index(EventKind.KILL_SWITCH_ACTIVATED) < kinds.index(EventKind.ALERT_FIRED)
    assert tl.first(EventKind.LAST_ORDER).source == "log"  # type: ignore[union-attr]


def test_time_to_kill_is_zero_when_no_order_left_after_the_switch() -> None:
    clock = ManualClock(start=0.0, wall_start=T0)
    tl = Timeline(clock)
    tl.record(EventKind.LAST_ORDER, "order before")
    clock.advance(1)
    tl.record(EventKind.KILL_SWITCH_ACTIVATED, "kill")
    assert tl.time_to_kill() == 0.0


def test_metrics_are_none_without_their_events() -> None:
    tl = Timeline(ManualClock())
    assert (tl.mttd(), tl.time_to_kill(), tl.rto()) == (None, None, None)
    tl.record(EventKind.FAULT_INJECTED, "x")
    assert tl.mttd() is None and tl.rto() is None


def test_detection_before_the_fault_does_not_count() -> None:
    clock = ManualClock(start=0.0)
    tl = Timeline(clock)
    tl.record(EventKind.ALERT_FIRED, "stale alert from before")
    clock.advance(1)
    tl.record(EventKind.FAULT_INJECTED, "fault")
    clock.advance(3)
    tl.record(EventKind.DETECTED, "real detection")
    assert tl.mttd() == pytest.approx(3.0)


def test_measurements_judge_targets() -> None:
    tl, _ = scenario_timeline()
    mttd, ttk, rto = tl.measurements(Targets(mttd_s=5, time_to_kill_s=1, rto_s=5))
    assert mttd == Measurement("MTTD", pytest.approx(2.0), 5, True)  # type: ignore[arg-type]
    assert mttd.verdict == "met"
    assert ttk.value_s is None and ttk.met is False and ttk.verdict == "missed (not measured)"
    assert rto.met is False and rto.verdict == "missed"
    assert rto.describe() == "RTO: 9.000s (target <= 5s): missed"


def test_measurement_without_target_has_no_verdict() -> None:
    m = judge("MTTD", 1.0, None)
    assert m.met is None and m.verdict == "no target"
    with pytest.raises(AttributeError):
        m.value_s = 3  # type: ignore[misc]  # frozen


def test_timeline_serialises_to_json() -> None:
    tl, _ = scenario_timeline()
    doc = json.loads(tl.to_json(Targets(rto_s=10)))
    assert doc["name"] == "kill switch drill"
    assert doc["started_at"] == "2026-01-05T14:30:00.000+00:00"
    assert [e["kind"] for e in doc["events"]] == ["fault_injected", "alert_fired", "detected", "recovered"]
    assert doc["events"][0]["offset_s"] == 1.0
    assert doc["events"][0]["details"] == {"fault_id": "price_shock-1"}
    assert doc["events"][1]["wall"] == "2026-01-05T14:30:03.000+00:00"
    rto = next(m for m in doc["measurements"] if m["name"] == "RTO")
    assert rto == {"name": "RTO", "value_s": 9.0, "target_s": 10, "met": True, "verdict": "met"}


def test_record_accepts_kind_strings_and_rejects_unknown() -> None:
    tl = Timeline(ManualClock())
    assert tl.record("step_started", "When the broker disconnects").kind is EventKind.STEP_STARTED
    with pytest.raises(ValueError):
        tl.record("exploded", "nope")

"""wait_until: attempts, last observation, timeouts with log lines, failing fast on a dead service."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.base import ServiceState
from harness.clock import ManualClock
from harness.errors import BackendError, ServiceDied, WaitTimeout
from harness.waiting import Observation, wait_until
from tests.unit.fake_backend import FakeBackend


class Counter:
    """A probe that becomes ok on its ``ok_on``-th call, advancing the clock a bit per call."""

    def __init__(self, clock: ManualClock, ok_on: int | None, cost: float = 0.01) -> None:
        self.clock = clock
        self.ok_on = ok_on
        self.cost = cost
        self.calls = 0

    def __call__(self) -> Observation:
        self.calls += 1
        self.clock.advance(self.cost)
        if self.ok_on is not None and self.calls >= self.ok_on:
            return Observation(True, "kill switch active", 1.0)
        return Observation(False, f"kill switch inactive (call {self.calls})", 0.0)


def test_returns_the_satisfying_observation_with_elapsed_and_attempts() -> None:
    clock = ManualClock(start=0.0)
    probe = Counter(clock, ok_on=3)
    result = wait_until(probe, deadline_s=5, what="kill switch active", interval_s=0.2, clock=clock)
    assert result.observation == Observation(True, "kill switch active", 1.0)
    assert result.value == 1.0
    assert result.attempts == 3
    assert result.elapsed_s == pytest.approx(0.43)
    assert clock.sleeps == [0.2, 0.2]


def test_first_attempt_ok_does_not_sleep() -> None:
    clock = ManualClock()
    result = wait_until(lambda: Observation(True, "up"), deadline_s=1, what="up", clock=clock)
    assert result.attempts == 1 and clock.sleeps == []


def test_timeout_message_has_expected_observed_attempts_and_hint() -> None:
    clock = ManualClock(start=0.0)
    probe = Counter(clock, ok_on=None, cost=0.0)
    with pytest.raises(WaitTimeout) as info:
        wait_until(probe, deadline_s=1.0, what="alert KillSwitchActive P0 firing", interval_s=0.25, clock=clock)
    text = str(info.value)
    assert "expected: alert KillSwitchActive P0 firing" in text
    assert "last observed: kill switch inactive (call 5)" in text
    assert "attempts: 5" in text
    assert "timed out after 1.00s (deadline 1s)" in text
    assert "hint:" in text
    assert probe.calls == 5  # 0, .25, .5, .75, 1.0: one last look at the deadline
    assert sum(clock.sleeps) == pytest.approx(1.0)


def test_sleep_is_capped_by_the_remaining_time() -> None:
    clock = ManualClock(start=0.0)
    with pytest.raises(WaitTimeout):
        wait_until(Counter(clock, None, cost=0.0), deadline_s=0.3, what="x", interval_s=0.2, clock=clock)
    assert clock.sleeps == [0.2, pytest.approx(0.1)]


def test_timeout_shows_the_last_log_lines_of_the_service(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.logs["traderunner"] = [f'{{"event": "tick", "n": {i}}}' for i in range(40)]
    clock = ManualClock()
    with pytest.raises(WaitTimeout) as info:
        wait_until(Counter(clock, None), deadline_s=0.5, what="x", backend=backend, service="traderunner",
                   clock=clock, hint="look at the strategy")
    text = str(info.value)
    assert "last 15 log lines of traderunner:" in text
    assert '"n": 39' in text and '"n": 25' in text and '"n": 24' not in text
    assert text.endswith("hint: look at the strategy")


def test_log_tail_failure_is_shown_not_hidden(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.fail_on.add("log_tail")
    clock = ManualClock()
    with pytest.raises(WaitTimeout, match=r"log lines of traderunner: unavailable \(BackendError"):
        wait_until(Counter(clock, None), deadline_s=0.1, what="x", backend=backend, service="traderunner", clock=clock)


@pytest.mark.parametrize("state", [ServiceState.DEAD, ServiceState.STOPPED])
def test_fails_fast_when_the_service_is_down(tmp_path: Path, state: ServiceState) -> None:
    backend = FakeBackend(tmp_path)
    backend.states["traderunner"] = state
    backend.logs["traderunner"] = ["Traceback (most recent call last):", "RuntimeError: boom"]
    clock = ManualClock(start=0.0)
    probe = Counter(clock, None)
    with pytest.raises(ServiceDied) as info:
        wait_until(probe, deadline_s=30, what="broker connected", backend=backend, service="traderunner",
                   clock=clock)
    assert probe.calls == 1 and clock.sleeps == []
    text = str(info.value)
    assert f"state {state.value}" in text and "broker connected" in text and "RuntimeError: boom" in text


def test_stopped_service_allowed_when_expected(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.states["traderunner"] = ServiceState.STOPPED
    clock = ManualClock()
    result = wait_until(Counter(clock, 3), deadline_s=5, what="x", backend=backend, service="traderunner",
                        clock=clock, allow_stopped=True)
    assert result.attempts == 3


def test_a_successful_probe_wins_even_if_the_service_is_dead(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.states["traderunner"] = ServiceState.DEAD
    result = wait_until(lambda: Observation(True, "health 503"), deadline_s=1, what="unhealthy",
                        backend=backend, service="traderunner", clock=ManualClock())
    assert result.observed == "health 503"


def test_probe_exceptions_propagate() -> None:
    def broken() -> Observation:
        raise BackendError("probe bug")

    with pytest.raises(BackendError, match="probe bug"):
        wait_until(broken, deadline_s=1, what="x", clock=ManualClock())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        wait_until(lambda: Observation(True, ""), deadline_s=1, what="x", interval_s=0)
    with pytest.raises(ValueError, match="deadline_s"):
        wait_until(lambda: Observation(True, ""), deadline_s=-1, what="x")

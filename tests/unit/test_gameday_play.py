"""Playing plan steps through their real step functions: re-timed waits, what they saw, cancellation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pytest_bdd import parsers
from pytest_bdd.steps import StepFunctionContext

from harness.catalog import StepDef, load_step_library
from harness.clock import EventKind, ManualClock
from harness.drill import Drill
from harness.errors import WaitTimeout
from harness.faults.network import LinkDown
from harness.gameday import load_plan
from harness.gameday.plan import PlanStep
from harness.gameday.play import Cancelled, GameDayDrill, call_step
from harness.plugin import DrillSettings
from harness.project import current_project
from harness.trading import Check
from harness.waiting import Observation
from tests.unit.fake_backend import FakeBackend

FLAG_UP = "the flag is up within {seconds:d} seconds"


def make_drill(tmp_path: Path, stop: threading.Event, clock: ManualClock) -> GameDayDrill:
    settings = DrillSettings("fake", tmp_path / "docker-compose.yml", tmp_path / "runs", None, False, False, None, ())
    return GameDayDrill(FakeBackend(tmp_path), settings, name="t", stop=stop, base=clock)  # type: ignore[arg-type]


def flag_step(flag: dict[str, bool]) -> PlanStep:
    """A team's detection step, as pytest-bdd would register it: it waits with the drill's expect."""

    def flag_is_up(drill: Drill, seconds: int) -> None:
        drill.expect(Check("the flag is up", lambda: Observation(flag["up"], f"flag up: {flag['up']}")),
                     within=seconds, kind=EventKind.ALERT_FIRED, label="flag up")

    context = StepFunctionContext(type="then", step_func=flag_is_up, parser=parsers.parse(FLAG_UP))
    return PlanStep("Then", "then", "the flag is up within 20 seconds", 3, StepDef("then", FLAG_UP, "", "t", context))


def test_a_watched_wait_takes_the_deadline_the_gameday_gives_it(tmp_path: Path) -> None:
    clock = ManualClock()
    drill = make_drill(tmp_path, threading.Event(), clock)
    start = clock.now()
    with drill.watching(within=1.5), pytest.raises(WaitTimeout):
        call_step(flag_step({"up": False}), drill)
    assert 1.5 <= clock.now() - start < 2.0  # not the step's own 20 seconds


def test_a_watched_wait_reports_what_it_saw_and_when(tmp_path: Path) -> None:
    clock = ManualClock()
    drill = make_drill(tmp_path, threading.Event(), clock)
    with drill.watching() as seen:
        call_step(flag_step({"up": True}), drill)
    assert [(s.kind, s.label) for s in seen] == [(EventKind.ALERT_FIRED, "flag up")]
    assert drill.timeline.first(EventKind.ALERT_FIRED) is not None


def test_a_watched_wait_ends_when_the_drill_stops_but_the_main_threads_does_not(tmp_path: Path) -> None:
    clock = ManualClock()
    stop = threading.Event()
    drill = make_drill(tmp_path, stop, clock)
    flag = {"up": False}

    def stop_after_three_looks() -> Observation:
        if len(clock.sleeps) >= 3:
            stop.set()
        return Observation(False, "down")

    step = flag_step(flag)
    with drill.watching(), pytest.raises(Cancelled):
        drill.expect(Check("never", stop_after_three_looks), within=60)
    assert len(clock.sleeps) == 4  # the sleep after the look that saw the stop was the last one
    with drill.watching(cancellable=False), pytest.raises(WaitTimeout):
        call_step(step, drill)  # e.g. a rollback's wait in the main thread: never cut short


def test_library_steps_run_through_their_own_functions_on_the_drill(tmp_path: Path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    (features / "link.feature").write_text(
        "@q2\nFeature: F\n  Scenario: S\n"
        "    When the broker link goes down\n"
        '    Then a P0 alert "Gone" fires within 5 seconds\n'
        "    When the broker link is restored\n"
        "    Then every service is healthy within 30 seconds\n",
        encoding="utf-8",
    )
    project = current_project(tmp_path)
    plan = load_plan("Q2", project=project, library=load_step_library(project))
    clock = ManualClock()
    drill = make_drill(tmp_path, threading.Event(), clock)
    backend = drill.backend
    assert plan.fault_end is not None
    call_step(plan.fault, drill)
    assert [type(f) for f in drill.faults] == [LinkDown]
    assert backend._toxiproxy.by_name["drill_broker"].enabled is False  # type: ignore[attr-defined]
    call_step(plan.fault_end, drill)
    assert backend._toxiproxy.by_name["drill_broker"].enabled is True  # type: ignore[attr-defined]
    assert [e.kind for e in drill.timeline.of([EventKind.FAULT_INJECTED, EventKind.FAULT_ROLLED_BACK])] == [
        EventKind.FAULT_INJECTED, EventKind.FAULT_ROLLED_BACK]


def test_the_abort_path_joins_only_watchers_that_started() -> None:
    from harness.gameday.session import join_started

    done = threading.Event()
    started = threading.Thread(target=done.wait, args=(5,))
    started.start()
    registered_only = threading.Thread(target=done.wait)  # the signal came before its start()
    done.set()
    join_started([started, registered_only], timeout_s=5)  # must not raise "cannot join thread before it is started"
    assert not started.is_alive()
    with pytest.raises(RuntimeError, match="before it is started"):
        registered_only.join(timeout=0)  # what the old abort path did

"""harness.runner: the run settings become the pytest command line; -x stops every xdist worker."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.project import current_project
from harness.runner import RunSettings, WorkerStopper, pytest_args, worker_count

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeReport:
    failed: bool
    user_properties: list[tuple[str, object]] = field(default_factory=list)


def settings(**kw: object) -> RunSettings:
    return RunSettings(project=current_project(ROOT), report_dir=Path("/tmp/r"),  # type: ignore[arg-type]
                       stack_file=Path("/tmp/s.yml"), **kw)


def test_serial_and_parallel_command_lines() -> None:
    module = Path("/tmp/r/.drill/test_drill_features.py")
    serial = pytest_args(settings(), module)
    assert "-n" not in serial and "xdist.plugin" not in serial
    assert serial.count("-p") >= 3 and "harness.plugin" in serial and "pytest_bdd.plugin" in serial
    assert serial[0] == str(module) and serial[serial.index("-c") + 1] == "/tmp/r/.drill/pytest.ini"
    parallel = pytest_args(settings(workers=3, exitfirst=True), module)
    assert parallel[parallel.index("-n") + 1] == "3" and "xdist.plugin" in parallel and "-x" in parallel


def test_auto_is_three_workers_per_core_and_a_dry_run_is_serial() -> None:
    import os

    assert worker_count(settings(workers="auto")) == max(2, 3 * len(os.sched_getaffinity(0)))
    assert worker_count(settings(workers=4, dry_run=True)) == 0
    assert worker_count(settings()) == 0


def test_the_first_failure_interrupts_every_known_worker_once() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time\n"
         "signal.signal(signal.SIGINT, lambda *a: sys.exit(7))\n"
         "print('ready', flush=True)\n"
         "time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        stopper = WorkerStopper(exitfirst=True)
        stopper.pytest_runtest_logreport(FakeReport(False, [("drill_worker_pid", child.pid)]))  # type: ignore[arg-type]
        assert child.poll() is None
        stopper.pytest_runtest_logreport(FakeReport(True))  # type: ignore[arg-type]
        assert child.wait(10) == 7 and stopper.stopped
        stopper.pytest_runtest_logreport(FakeReport(True))  # type: ignore[arg-type]  # already stopped: no-op
    finally:
        child.kill()


def test_without_exitfirst_a_failure_stops_nothing() -> None:
    stopper = WorkerStopper(exitfirst=False)
    stopper.pytest_runtest_logreport(FakeReport(True, [("drill_worker_pid", 1)]))  # type: ignore[arg-type]
    assert not stopper.stopped and stopper.pids == {1}


def test_a_sigterm_reaching_the_controller_becomes_an_interrupt() -> None:
    stopper = WorkerStopper(exitfirst=False)
    with pytest.raises(KeyboardInterrupt):
        stopper.on_sigterm(15, None)
    assert stopper.stopped


def _journal(path: Path, *scenarios: tuple[str, str, str, float]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"scenarios": [
        {"feature_file": f"features/{feature}", "scenario": name, "status": status, "duration_s": seconds}
        for feature, name, status, seconds in scenarios
    ]}))


def test_each_scenarios_duration_comes_from_the_newest_earlier_run_that_passed_it(tmp_path: Path) -> None:
    from harness.runner import earlier_durations, write_durations

    _journal(tmp_path / "report-20261130-100000" / "journal-gw0.json", ("a.feature", "old", "passed", 5.0))
    _journal(tmp_path / "report-20261130-110000" / "journal-gw0.json", ("a.feature", "slow", "passed", 40.0),
             ("a.feature", "failed fast", "failed", 0.5))
    _journal(tmp_path / "report-20261130-110000" / "journal-gw1.json", ("b.feature", "quick", "passed", 3.0))
    (tmp_path / "report-20261130-120000").mkdir()  # an earlier run that wrote nothing (interrupted at start)
    current = tmp_path / "report-20261130-130000"
    (current / ".drill").mkdir(parents=True)
    _journal(current / "journal.json", ("a.feature", "now", "passed", 1.0))  # the run itself never counts
    # newest first per scenario: "old" comes from the older run, as the newer one did not run it
    assert earlier_durations(current) == {"a.feature": {"slow": 40.0, "old": 5.0}, "b.feature": {"quick": 3.0}}
    assert earlier_durations(current, reports=2) == {"a.feature": {"slow": 40.0}, "b.feature": {"quick": 3.0}}
    written = write_durations(current, current / ".drill")
    assert written is not None
    args = pytest_args(settings(workers=2), current / ".drill" / "m.py", durations=written)
    assert args[args.index("--drill-durations") + 1] == str(written)
    assert write_durations(tmp_path / "elsewhere" / "report-x", tmp_path) is None


def test_longest_first_starts_unknown_then_long_scenarios_keeping_feature_order_for_ties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from harness import plugin

    items = [SimpleNamespace(name=n) for n in ("quick", "slow", "new", "middle", "quick too")]
    monkeypatch.setattr(plugin, "_scenario_of", lambda item: SimpleNamespace(
        feature=SimpleNamespace(filename="/p/features/a.feature")))
    monkeypatch.setattr(plugin, "scenario_title", lambda item: item.name)
    plugin.longest_first(items, {("a.feature", "quick"): 3.0, ("a.feature", "slow"): 40.0,  # type: ignore[arg-type]
                                 ("a.feature", "middle"): 12.0, ("a.feature", "quick too"): 3.0})
    assert [i.name for i in items] == ["new", "slow", "middle", "quick", "quick too"]
    plugin.longest_first(items, {("a.feature", n): d for n, d in  # type: ignore[arg-type]
                                 (("new", 60.0), ("slow", 40.0), ("middle", 12.0), ("quick", 3.0), ("quick too", 2.0))},
                         workers=2)
    # xdist gives each of 2 workers a first chunk of two: the longest goes with the shortest of the first four
    assert [i.name for i in items] == ["new", "quick", "slow", "middle", "quick too"]


def test_a_durations_file_that_cannot_be_read_orders_nothing(tmp_path: Path) -> None:
    from harness.plugin import load_durations

    assert load_durations(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert load_durations(tmp_path / "bad.json") == {}
    (tmp_path / "ok.json").write_text('{"a.feature": {"x": 2, "y": "n/a"}, "b.feature": []}')
    assert load_durations(tmp_path / "ok.json") == {("a.feature", "x"): 2.0}


@pytest.mark.parametrize(
    ("pytest_code", "verdicts", "expected"),
    [
        (1, {"halted": 2}, 4),  # `drill halt` stopped the run: a safety stop (README), not a failed drill
        (1, {"passed": 1, "halted": 1}, 4),
        (1, {"halted": 1, "failed": 1}, 1),  # a halt never hides a drill that failed on its own
        (1, {"halted": 1, "error": 1}, 1),
        (1, {"failed": 1}, 1),
        (0, {"passed": 3}, 0),
        (2, {"halted": 1}, 130),  # interrupted stays interrupted
        (5, {}, 5),
    ],
)
def test_a_halted_run_exits_4_unless_a_drill_failed_for_its_own_reasons(
    pytest_code: int, verdicts: dict[str, int], expected: int
) -> None:
    from harness.runner import exit_code

    assert exit_code(pytest_code, verdicts) == expected

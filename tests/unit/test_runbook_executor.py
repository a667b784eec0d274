"""The runbook executor against an in-memory backend: what runs, what lands on the timeline, failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.backends.base import CommandResult
from harness.clock import EventKind, ManualClock
from harness.drill import Drill
from harness.errors import RunbookError, RunbookStepFailed
from harness.plugin import DrillSettings
from harness.runbook.executor import PRELUDE, follow_step, output_shows
from tests.unit.fake_backend import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "docs/incident-response-runbook.md"
HOSTILE = ROOT / "fixtures/runbooks/hostile.md"


class ScriptedBackend(FakeBackend):
    """``shell`` answers from a queue of results (default: exit 0, output "ok")."""

    def __init__(self, tmp: Path, runbook: Path | None) -> None:
        super().__init__(tmp)
        self.stack = dataclasses.replace(self.stack, runbook=runbook)
        self.results: list[CommandResult] = []
        self.scripts: list[tuple[str, float]] = []

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        self.scripts.append((script, timeout))
        clock.advance(0.25)
        return self.results.pop(0) if self.results else CommandResult(("bash",), 0, "ok\n", "", 0.25)


clock = ManualClock()


def make_drill(tmp_path: Path, runbook: Path | None = PROJECT, *, dry_run: bool = False) -> Drill:
    backend = ScriptedBackend(tmp_path, runbook)
    settings = DrillSettings("fake", tmp_path / "docker-compose.yml", tmp_path / "runs", None, dry_run, False, None, ())
    return Drill(backend, settings, name="t", clock=clock)  # type: ignore[arg-type]


def test_runs_the_blocks_verbatim_and_times_the_step_on_the_timeline(tmp_path: Path) -> None:
    drill = make_drill(tmp_path)
    run = follow_step(drill, "Kill Switch Triggered", 2)
    assert run is not None and run.exit_code == 0 and run.output == "ok\n"
    backend = drill.backend
    assert isinstance(backend, ScriptedBackend)
    ((script, timeout),) = backend.scripts
    assert script == PRELUDE + "cat artifacts/state/positions.json\ncat artifacts/state/daily_pnl.json"
    assert timeout == 60.0
    started, ended = drill.timeline.of([EventKind.STEP_STARTED, EventKind.STEP_ENDED])
    assert started.label == ended.label == 'runbook "Kill Switch Triggered" step 2: Check the portfolio: open ' \
                                           "positions and today's P&L"
    assert ended.t - started.t == pytest.approx(0.25)
    assert ended.details["exit_code"] == 0 and ended.details["output"] == "ok\n"
    assert str(ended.details["where"]).endswith("incident-response-runbook.md:78")


def test_feature_text_only_chooses_the_step(tmp_path: Path) -> None:
    drill = make_drill(tmp_path)
    with pytest.raises(RunbookError, match="no section called"):
        follow_step(drill, 'Kill Switch Triggered"; rm -rf /; echo "', 1)
    assert drill.backend.scripts == []  # type: ignore[attr-defined]


def test_failing_command_names_command_exit_code_line_and_output(tmp_path: Path) -> None:
    drill = make_drill(tmp_path)
    drill.backend.results.append(CommandResult(  # type: ignore[attr-defined]
        ("bash",), 1, "", "error: traderunner is not running\n__drill_runbook_failed_at_line__=3\n", 0.1))
    with pytest.raises(RunbookStepFailed) as exc:
        follow_step(drill, "Broker Connection Lost", 4)
    text = str(exc.value)
    assert "expected exit 0, observed exit 1" in text
    assert "command (" in text and "traderunner reconcile" in text
    assert "incident-response-runbook.md:139" in text  # the failing command's own line
    assert "error: traderunner is not running" in text and "__drill_runbook" not in text
    assert drill.timeline.last(EventKind.STEP_ENDED).details["exit_code"] == 1  # type: ignore[union-attr]


def test_expected_problem_exit_1_passes_and_anything_else_fails(tmp_path: Path) -> None:
    drill = make_drill(tmp_path)
    drill.backend.results.append(CommandResult(("bash",), 1, "Reconciliation mismatch\n", "", 0.1))  # type: ignore[attr-defined]
    follow_step(drill, "Unexpected Position", 2, expect_exit=1)
    output_shows(drill, "mismatch")
    with pytest.raises(RunbookStepFailed, match="expected exit 1 .* observed exit 0"):
        follow_step(drill, "Unexpected Position", 2, expect_exit=1)


def test_timeout_is_reported_with_the_output_so_far(tmp_path: Path) -> None:
    drill = make_drill(tmp_path, HOSTILE)
    drill.backend.results.append(CommandResult(("bash",), -9, "started\n", "", 2.0, timed_out=True))  # type: ignore[attr-defined]
    with pytest.raises(RunbookStepFailed) as exc:
        follow_step(drill, "Hostile", 1, timeout_s=2)
    assert "did not finish within 2s and was killed" in str(exc.value) and "started" in str(exc.value)
    assert drill.timeline.last(EventKind.STEP_ENDED).details["timed_out"] is True  # type: ignore[union-attr]


def test_megabytes_of_output_are_truncated_in_the_timeline(tmp_path: Path) -> None:
    drill = make_drill(tmp_path, HOSTILE)
    drill.backend.results.append(CommandResult(("bash",), 0, "x" * 3_000_000 + "\ndone\n", "", 1.0))  # type: ignore[attr-defined]
    follow_step(drill, "Hostile", 2)
    detail = str(drill.timeline.last(EventKind.STEP_ENDED).details["output"])  # type: ignore[union-attr]
    assert len(detail) < 2200 and "characters truncated" in detail and detail.endswith("done\n")


def test_steps_nobody_can_act_on_are_refused_before_anything_runs(tmp_path: Path) -> None:
    drill = make_drill(tmp_path, HOSTILE)
    with pytest.raises(RunbookError, match="not actionable: its commands are all commented out.*TODO"):
        follow_step(drill, "Hostile", 3)
    with pytest.raises(RunbookError, match="has no command block to run.*think hard"):
        follow_step(drill, "Hostile", 4)
    unclosed = make_drill(tmp_path / "u", ROOT / "fixtures/runbooks/unclosed-fence.md")
    with pytest.raises(RunbookError, match="never closed"):
        follow_step(unclosed, "Restart", 1)
    assert drill.backend.scripts == [] and drill.timeline.of(EventKind.STEP_STARTED) == ()  # type: ignore[attr-defined]


def test_stack_without_runbook_says_how_to_add_one(tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match="names no runbook") as exc:
        follow_step(make_drill(tmp_path, None), "Kill Switch Triggered", 1)
    assert "x-drill" in str(exc.value)


def test_dry_run_prints_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = make_drill(tmp_path, dry_run=True)
    assert follow_step(drill, "Data SLA Violation", 4) is None
    out = capsys.readouterr().out
    assert "would run (incident-response-runbook.md:" in out and "traderunner data fetch" in out
    assert drill.backend.scripts == []  # type: ignore[attr-defined]
    output_shows(drill, "anything")  # planned, not checked


def test_output_shows_reports_what_was_observed(tmp_path: Path) -> None:
    drill = make_drill(tmp_path)
    with pytest.raises(RunbookError, match="no runbook step was followed"):
        output_shows(drill, "x")
    follow_step(drill, "Kill Switch Triggered", 1)
    with pytest.raises(RunbookStepFailed, match='to show "Kill switch activated"'):
        output_shows(drill, "Kill switch activated")

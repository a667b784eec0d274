"""The runbook executor for real: hostile blocks in a real bash, and the project runbook against the mock stack."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import CommandResult
from harness.backends.process import ProcessBackend
from harness.clock import EventKind
from harness.commands import run_command
from harness.drill import Drill
from harness.errors import RunbookStepFailed
from harness.plugin import DrillSettings
from harness.runbook.executor import follow_step, output_shows
from harness.stack import load_stack
from tests.unit.fake_backend import FakeBackend

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def settings(tmp: Path) -> DrillSettings:
    return DrillSettings("process", ROOT / "docker-compose.yml", tmp / "runs", None, False, False, None, ())


class LocalShell(FakeBackend):
    """Only ``shell`` is real: bash in a tmp working directory, through harness.commands."""

    def __init__(self, tmp: Path, runbook: Path) -> None:
        super().__init__(tmp)
        self.stack = dataclasses.replace(self.stack, runbook=runbook)

    def shell(self, script: str, timeout: float = 30.0) -> CommandResult:
        return run_command(["bash", "-o", "pipefail", "-c", script], cwd=self.workdir, env=dict(os.environ),
                           timeout=timeout)


def test_a_hanging_command_is_killed_at_its_timeout_and_reported(tmp_path: Path) -> None:
    drill = Drill(LocalShell(tmp_path, ROOT / "fixtures/runbooks/hostile.md"), settings(tmp_path), name="hang")  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(RunbookStepFailed) as exc:
        follow_step(drill, "Hostile", 1, timeout_s=1.0)
    assert time.monotonic() - start < 30  # generous: 2 shared cores
    text = str(exc.value)
    assert "did not finish within 1s and was killed" in text and "started" in text
    ended = drill.timeline.last(EventKind.STEP_ENDED)
    assert ended is not None and ended.details["timed_out"] is True


def test_megabytes_of_output_are_capped_and_truncated_in_the_report(tmp_path: Path) -> None:
    drill = Drill(LocalShell(tmp_path, ROOT / "fixtures/runbooks/hostile.md"), settings(tmp_path), name="big")  # type: ignore[arg-type]
    run = follow_step(drill, "Hostile", 2, timeout_s=60)
    assert run is not None and run.output.rstrip().endswith("done")
    assert len(run.output) < 70 * 1024  # harness.commands caps captured output
    ended = drill.timeline.last(EventKind.STEP_ENDED)
    assert ended is not None and len(str(ended.details["output"])) < 2200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessBackend]:
    backend = ProcessBackend(load_stack(ROOT / "docker-compose.yml"), tmp_path_factory.mktemp("rb") / "run")
    backend.up()
    try:
        yield backend
    finally:
        backend.down()


def test_project_runbook_steps_run_against_the_stack(stack: ProcessBackend, tmp_path: Path) -> None:
    drill = Drill(stack, settings(tmp_path), name="runbook")
    run = follow_step(drill, "Kill Switch Triggered", 2)
    assert run is not None and '"positions"' in run.output and '"max_daily_loss"' in run.output
    follow_step(drill, "Unexpected Position", 3)
    output_shows(drill, "no duplicate idempotency keys")
    follow_step(drill, "Rollback Paper → Lab", 1)
    output_shows(drill, "mode:        lab")
    follow_step(drill, "Broker Connection Lost", 4)
    output_shows(drill, "Reconciliation ok")
    kinds = [e.kind for e in drill.timeline.events]
    assert kinds.count(EventKind.STEP_STARTED) == kinds.count(EventKind.STEP_ENDED) == 4


def test_a_failing_runbook_command_is_named_with_its_exit_code_and_output(
    stack: ProcessBackend, tmp_path: Path
) -> None:
    drill = Drill(stack, settings(tmp_path), name="fails")
    # no kill switch has tripped: step 1's grep finds nothing and exits 1
    with pytest.raises(RunbookStepFailed) as exc:
        follow_step(drill, "Kill Switch Triggered", 1)
    text = str(exc.value)
    assert "expected exit 0, observed exit 1" in text
    assert 'grep "Kill switch activated" artifacts/logs/latest.log | tail -n 5' in text
    assert "incident-response-runbook.md:73" in text  # the grep's own line
    assert "kill switch: inactive" in text  # the output of the commands before it

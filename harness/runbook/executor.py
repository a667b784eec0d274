"""Run one runbook step as the on-call would: its shell blocks, in the stack's working directory.

``follow_step(drill, "Kill Switch Triggered", 2)`` finds the step in the stack's runbook
(``x-drill.runbook``), runs each of its shell blocks through ``drill.backend.shell`` (the stack's
working directory, the operator CLI on PATH, a timeout that kills the block's process group), and
records ``step_started`` / ``step_ended`` on the drill's timeline, so the time the runbook takes
counts towards the RTO. The output goes into the timeline (truncated) and the returned
:class:`StepRun`.

The script run is the block's text exactly as written in the runbook, after a fixed two-line
prelude (``set -e`` and an ``ERR`` trap that names the failing line). Nothing from a feature's text
is ever put into the script: a feature only chooses *which* step runs.

A step nobody could act on (only prose, only commented-out commands, an unclosed code fence) is
refused before anything runs, with the runbook's file:line.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.base import CommandResult
from harness.clock import EventKind
from harness.errors import RunbookError, RunbookStepFailed
from harness.runbook.parser import CodeBlock, Runbook, Section, Step, parse_runbook

if TYPE_CHECKING:
    from harness.drill import Drill
    from harness.stack import StackDescription

DEFAULT_TIMEOUT_S = 60.0
TIMELINE_OUTPUT_CHARS = 2000
LAST_STEP_KEY = "runbook.last_step"

_MARK = "__drill_runbook_failed_at_line__"
PRELUDE = f"set -e\ntrap 'echo \"{_MARK}=$LINENO\" >&2' ERR\n"
PRELUDE_LINES = PRELUDE.count("\n")
_MARK_LINE = re.compile(rf"^{_MARK}=(\d+)\n?", re.MULTILINE)


@dataclass(frozen=True)
class BlockRun:
    block: CodeBlock
    result: CommandResult
    failed_line: int | None  # runbook line of the command that failed, when bash could tell

    @property
    def output(self) -> str:
        return _MARK_LINE.sub("", self.result.output)

    @property
    def failed_command(self) -> str:
        """The command at ``failed_line`` (the last one starting at or before it), else the whole block."""
        if self.failed_line is not None:
            before = [c for c in self.block.commands if c.line <= self.failed_line]
            if before:
                return before[-1].text
        return self.block.text


@dataclass(frozen=True)
class StepRun:
    runbook: Path
    section: Section
    step: Step
    blocks: tuple[BlockRun, ...]

    @property
    def exit_code(self) -> int:
        return self.blocks[-1].result.exit_code if self.blocks else 0

    @property
    def output(self) -> str:
        return "\n".join(b.output for b in self.blocks)

    @property
    def duration_s(self) -> float:
        return sum(b.result.duration_s for b in self.blocks)

    @property
    def where(self) -> str:
        return f"{self.runbook}:{self.step.line}"

    def describe(self) -> str:
        return f'runbook step {self.step.number} of "{self.section.title}" ({self.step.title})'


@lru_cache(maxsize=8)
def _parse_cached(path: Path, mtime_ns: int) -> Runbook:
    return parse_runbook(path)


def load_runbook(path: Path) -> Runbook:
    """Parse the runbook at ``path`` (cached until the file changes)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _parse_cached(path, mtime)


def stack_runbook(stack: StackDescription) -> Runbook:
    if stack.runbook is None:
        raise RunbookError(
            f"the stack description {stack.path} names no runbook",
            hint="add 'runbook: docs/incident-response-runbook.md' (relative to the stack file) to its top-level "
            "x-drill",
        )
    return load_runbook(stack.runbook)


def runnable_blocks(runbook: Runbook, section: Section, step: Step) -> tuple[CodeBlock, ...]:
    """The shell blocks a drill may run; refuses (RunbookError) a step nobody could act on."""
    where = f"{runbook.path}:{step.line}"
    name = f'step {step.number} of "{section.title}" ({step.title})'
    for block in step.blocks:
        if not block.closed:
            raise RunbookError(
                f"{where}: {name} has a code block that is never closed (opened at line {block.line})",
                hint="close the ``` fence; `drill lint --runbook` finds these",
            )
    shell = step.shell_blocks
    if not shell:
        prose = "; ".join(c.text for c in step.checks[:3]) or "nothing"
        raise RunbookError(
            f"{where}: {name} has no command block to run (expected a ```bash block; observed prose: {prose})",
            hint="give the step a shell block, or check its outcome with a Then step instead of following it",
        )
    runnable = tuple(b for b in shell if b.commands)
    if not runnable:
        todo = next((f"line {ln}: {t.strip()}" for b in shell for ln, t in b.lines if t.strip()), "")
        raise RunbookError(
            f"{where}: {name} is not actionable: its commands are all commented out ({todo})",
            hint="replace the placeholder with the real command; `drill lint --runbook` reports these",
        )
    return runnable


def follow_step(
    drill: Drill, section_name: str, number: int, *, expect_exit: int = 0, timeout_s: float = DEFAULT_TIMEOUT_S
) -> StepRun | None:
    """Run step ``number`` of ``section_name``; fail unless its last command exits ``expect_exit``.

    ``expect_exit=1`` is for a check step that must report a problem (a reconcile command on a
    mismatch). Returns None in a dry run (nothing runs; what would run is printed).
    """
    runbook = stack_runbook(drill.backend.stack)
    section = runbook.section(section_name)
    step = section.step(number)
    blocks = runnable_blocks(runbook, section, step)
    label = f'runbook "{section.title}" step {step.number}: {step.title}'
    where = f"{runbook.path}:{step.line}"
    if drill.dry_run is not None:
        for block in blocks:
            for cmd in block.commands:
                _say(drill, f"would run ({runbook.path.name}:{cmd.line}): {cmd.text}")
        return None
    drill.timeline.record(EventKind.STEP_STARTED, label, where=where)
    runs: list[BlockRun] = []
    for block in blocks:
        result = drill.backend.shell(PRELUDE + block.text, timeout=timeout_s)
        failed = _MARK_LINE.search(result.stderr)
        failed_line = block.line + int(failed.group(1)) - PRELUDE_LINES if failed else None
        runs.append(BlockRun(block, result, failed_line))
        if result.timed_out or result.exit_code != 0:
            break
    run = StepRun(runbook.path, section, step, tuple(runs))
    drill.remembered[LAST_STEP_KEY] = run
    last = runs[-1]
    drill.timeline.record(
        EventKind.STEP_ENDED,
        label,
        where=where,
        exit_code=last.result.exit_code,
        timed_out=last.result.timed_out,
        duration_s=round(run.duration_s, 3),
        commands=" ; ".join(c.text for b in runs for c in b.block.commands)[:500],
        output=truncate(run.output, TIMELINE_OUTPUT_CHARS),
    )
    _judge(run, last, expect_exit, timeout_s)
    return run


def _judge(run: StepRun, last: BlockRun, expect_exit: int, timeout_s: float) -> None:
    result = last.result
    at = f"{run.runbook}:{last.failed_line or last.block.line}"
    if result.timed_out:
        raise RunbookStepFailed(
            f"{run.describe()} did not finish within {timeout_s:g}s and was killed\n"
            f"  command ({at}): {last.failed_command}\n  output so far:\n{_indent(truncate(last.output, 2000))}",
            hint="a runbook command must finish on its own; add a timeout to it or split the step",
        )
    if result.exit_code != expect_exit:
        expected = "exit 0" if expect_exit == 0 else f"exit {expect_exit} (the check reports a problem)"
        raise RunbookStepFailed(
            f"{run.describe()} failed: expected {expected}, observed exit {result.exit_code}\n"
            f"  command ({at}): {last.failed_command}\n  output:\n{_indent(truncate(last.output, 2000))}",
            hint="the runbook step does not work as written against this stack: fix the runbook or the stack",
        )


def output_shows(drill: Drill, text: str) -> None:
    """The last runbook step's output contains ``text`` (case-sensitive)."""
    if drill.dry_run is not None:
        _say(drill, f'would check the runbook step output shows "{text}"')
        return
    run = drill.remembered.get(LAST_STEP_KEY)
    if not isinstance(run, StepRun):
        raise RunbookError("no runbook step was followed before this check",
                           hint='add a step like: When the on-call follows runbook step 1 of "..."')
    if text not in run.output:
        raise RunbookStepFailed(
            f'expected the output of {run.describe()} to show "{text}"\n  observed:\n'
            f"{_indent(truncate(run.output, 2000) or '(no output)')}",
            hint=f"the step at {run.where} does not show what the on-call needs to see",
        )


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters: the head and the tail, with how much was cut in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters truncated ...]\n{text[-half:]}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _say(drill: Drill, line: str) -> None:
    drill.timeline.note(f"[dry-run] {line}")
    print(f"  [dry-run] {line}", file=sys.stdout, flush=True)

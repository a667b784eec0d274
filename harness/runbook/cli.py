"""CLI for runbooks: ``drill lint --runbook FILE`` (its body) and ``drill coverage``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from harness.cli_shared import (
    EXIT_INPUT,
    console,
    default_features,
    default_runs,
    default_stack_file,
    friendly_errors,
    rel,
    stack_file_option,
)
from harness.errors import RunbookError
from harness.project import current_project

if TYPE_CHECKING:
    from harness.runbook.parser import Runbook


def _stack_runbook(stack_file: Path | None) -> tuple[Path | None, Path | None]:
    """(the stack's directory, its x-drill.runbook) -- (None, None) without a stack file."""
    from harness.stack import load_stack

    path = stack_file or default_stack_file()
    if not path.exists():
        return None, None
    stack = load_stack(path)
    return stack.stack_dir, stack.runbook


def lint_runbook_command(
    runbook_file: Path, *, features: list[Path], stack_file: Path | None, workdir: Path | None
) -> None:
    """Print every finding with file:line; exit 2 when anything is blocking."""
    from harness.runbook.linter import LintOptions, lint_runbook
    from harness.runbook.parser import Severity, parse_runbook

    stack_dir, stack_runbook = _stack_runbook(stack_file)
    runbook = parse_runbook(runbook_file)
    is_stacks = stack_runbook is not None and stack_runbook == runbook_file.resolve()
    found = lint_runbook(
        runbook,
        LintOptions(stack_dir=stack_dir, workdir=workdir, features=features, references_block=is_stacks),
    )
    for d in found:
        color = "red" if d.severity == Severity.BLOCKING else "yellow"
        code = escape(f"[{d.code}]")
        console.print(f"[{color}]{rel(d.path)}:{d.line}[/] {d.severity.value} {code} {escape(d.message)}")
        if d.hint:
            console.print(f"    [dim]fix: {escape(d.hint)}[/]")
    blocking = sum(1 for d in found if d.severity == Severity.BLOCKING)
    warnings = len(found) - blocking
    steps = sum(len(s.steps) for s in runbook.sections)
    checked = f"{len(runbook.sections)} sections, {steps} steps"
    if workdir is None:
        checked += "; files not checked (pass --workdir of a running stack)"
    if blocking:
        console.print(f"[bold red]{blocking} blocking[/], {warnings} warning(s) in {rel(runbook.path)} ({checked})")
        sys.exit(EXIT_INPUT)
    console.print(f"[green]ok[/]: {rel(runbook.path)}: no blocking finding, {warnings} warning(s) ({checked})")


@click.command("coverage")  # registered in harness/cli.py
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--runbook", "runbook_file", type=click.Path(path_type=Path),
              help="the runbook (default: x-drill.runbook of the stack description)")
@click.option("--report", "report_dir", type=click.Path(path_type=Path),
              help="read results from this report directory (default: the newest journal under ./runs/report-*)")
@stack_file_option
@friendly_errors
def coverage_command(paths: tuple[Path, ...], runbook_file: Path | None, report_dir: Path | None,
                     stack_file: Path | None) -> None:
    """Runbook sections -> the drills that follow their steps -> how those drills last went."""
    from harness.runbook.coverage import coverage as compute_coverage
    from harness.runbook.coverage import journals
    from harness.runbook.parser import parse_runbook

    if runbook_file is None and stack_file is None:
        runbook_file = current_project().runbook  # the drill project's `runbook` comes before the stack file's
    if runbook_file is None:
        _, runbook_file = _stack_runbook(stack_file)
    if runbook_file is None:
        raise click.UsageError("no runbook: pass --runbook FILE or set x-drill.runbook in the stack description")
    runbook: Runbook = parse_runbook(runbook_file)
    if not any(s.steps for s in runbook.sections):
        raise RunbookError(
            f"no section with steps ({len(runbook.sections)} heading(s)): nothing for drills to cover",
            location=str(runbook_file), hint="`drill lint --runbook` shows what the runbook lacks",
        )
    if report_dir is not None:
        found = [report_dir / "journal.json"] if (report_dir / "journal.json").is_file() else []
        if not found:
            raise click.BadParameter(f"no journal.json in {report_dir}", param_hint="--report")
    else:
        found = journals(default_runs())
    rows = compute_coverage(runbook, list(paths) or [default_features()], found)
    table = Table(title=f"Runbook coverage: {rel(runbook.path)}", show_lines=True)
    for col in ("section", "steps drilled", "drilled by (feature: scenario)", "last result"):
        table.add_column(col)
    colors = {"passed": "green", "failed": "red", "error": "red", "mixed": "yellow"}
    for row in rows:
        steps = sorted({r.step for r in row.refs})
        all_steps = [s.number for s in row.section.steps]
        drilled = ", ".join(map(str, steps)) + f" of {len(all_steps)}" if steps else f"none of {len(all_steps)}"
        by = "\n".join(f"{escape(f)}: {escape(s)}" for f, s, _ in row.results) or "[red]no drill[/]"
        res = "\n".join(
            f"[{colors.get(r.status, 'dim')}]{r.status}[/]" + (f" ({r.detail})" if r.detail else "")
            for _, _, r in row.results
        ) or "-"
        table.add_row(f"{escape(row.section.title)}\n[dim]{rel(runbook.path)}:{row.section.line}[/]", drilled, by, res)
    console.print(table)
    used = sorted({rel(r.journal) for row in rows for _, _, r in row.results if r.journal is not None})
    console.print("results from: " + (", ".join(used) if used else "no journal (run `drill run` first): not run"))
    uncovered = [row.section for row in rows if not row.covered]
    if uncovered:
        console.print(f"[yellow]{len(uncovered)} uncovered section(s)[/]:")
        for s in uncovered:
            console.print(f"  {rel(runbook.path)}:{s.line} {escape(s.title)}")
    else:
        console.print(f"[green]every section with commands is drilled[/] ({len(rows)} sections)")


coverage: click.Command = coverage_command

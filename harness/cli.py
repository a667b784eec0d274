"""The ``drill`` command: the group and its commands (exit codes: :mod:`harness.cli_shared`)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import click
from rich.markup import escape
from rich.table import Table

from harness.cli_shared import (
    EXIT_INPUT,
    backend_option,
    console,
    default_features,
    default_runs,
    default_stack_file,
    friendly_errors,
    rel,
    stack_file_option,
)
from harness.errors import FeatureError
from harness.project import current_project
from harness.report.cli import docs as docs_command
from harness.report.cli import gameday as gameday_command
from harness.report.cli import plan as plan_command
from harness.report.cli import report as report_command
from harness.runbook.cli import coverage as coverage_command

QUARTERS = ("Q1", "Q2", "Q3", "Q4")


class WorkerCount(click.ParamType):  # type: ignore[type-arg]
    """``-n``: a positive number of workers, or ``auto``."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | Literal["auto"]:
        if isinstance(value, int) or value == "auto":
            return value  # type: ignore[no-any-return]
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text.isdigit() and int(text) > 0:
            return int(text)
        self.fail(f"expected a positive number of workers or 'auto', observed {value!r}", param, ctx)


WORKERS = WorkerCount()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Executable incident drills for trading stacks: inject real failures, assert detection, runbook steps and RTO."""


# --- drill run ------------------------------------------------------------------------------------


def marker_expression(quarter: str | None, tags: str | None) -> str | None:
    parts = []
    if quarter:
        q = quarter.upper()
        if q not in QUARTERS:
            raise click.BadParameter(
                f"{quarter!r} is not a quarter; use one of {', '.join(QUARTERS)}", param_hint="--quarter"
            )
        parts.append(q.lower())
    if tags:
        expression = tags.replace("@", "")
        known = set(current_project().markers)
        unknown = sorted({w for w in re.findall(r"[A-Za-z_][\w\-]*", expression) if w not in ("and", "or", "not")}
                         - known)
        if unknown:
            raise click.BadParameter(
                f"unknown tag(s) {', '.join(unknown)}; the tags of this drill project are: {', '.join(sorted(known))}",
                param_hint="--tags",
            )
        parts.append(f"({expression})")
    return " and ".join(parts) or None


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--quarter", help="only the quarterly drill Q1..Q4")
@click.option("--tags", help="marker expression over Gherkin tags, e.g. 'p0 and not outage'")
@backend_option
@stack_file_option
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), help="report directory (default: runs/report-<time>)"
)
@click.option("--dry-run", is_flag=True, help="print each fault, target and expected detection; touch nothing")
@click.option("--allow-live", is_flag=True, help="allow a stack in live mode (asks for a typed confirmation)")
@click.option("-x", "--exitfirst", is_flag=True, help="stop at the first failed scenario")
@click.option(
    "-n",
    "--workers",
    type=WORKERS,
    default=None,
    help="run scenarios in N parallel workers, each with its own stacks ('auto': two per CPU core)",
)
@click.option("-v", "--verbose", is_flag=True, help="show pytest's own output")
@friendly_errors
def run(
    paths: tuple[Path, ...],
    quarter: str | None,
    tags: str | None,
    backend: str | None,
    stack_file: Path | None,
    report_dir: Path | None,
    dry_run: bool,
    allow_live: bool,
    exitfirst: bool,
    workers: int | Literal["auto"] | None,
    verbose: bool,
) -> None:
    """Run drills (all features, or PATHS) and print detection times, RTO vs target and verdicts."""
    from harness.catalog import feature_files
    from harness.runner import RunSettings, run_drills

    project = current_project()
    selected = feature_files(list(paths) or [project.features])
    if not selected:
        source = f"features in {project.config}" if project.config.is_file() else "no drill.toml: the default"
        where = ", ".join(rel(p) for p in paths) if paths else f"{rel(project.features)} ({source})"
        raise FeatureError(f"no .feature file in {where}",
                           hint="pass feature files or a directory that holds some (`drill init` writes starters)")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    confirm = None
    if allow_live:
        confirm = click.prompt("This may inject faults into a LIVE stack. Type the stack's name to confirm")
    settings = RunSettings(
        project=project,
        report_dir=(report_dir or project.reports / f"report-{stamp}").resolve(),
        stack_file=(stack_file or project.stack).resolve(),
        backend=backend or project.backend,
        backend_source=None if backend else f"backend = {project.backend!r} in {project.config}",
        features=tuple(selected),
        marker=marker_expression(quarter, tags),
        dry_run=dry_run,
        allow_live=allow_live,
        confirm_live=confirm,
        exitfirst=exitfirst,
        verbose=verbose,
        workers=workers,
    )
    sys.exit(run_drills(settings, console))


# --- drill init -------------------------------------------------------------------------------------


@main.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--sections", default=",".join(["kill_switch", "broker", "data", "outage", "positions"]),
              show_default=True, help="runbook sections to write a starter drill for (comma-separated)")
@click.option("--stack", "stack", type=click.Path(path_type=Path), help="your existing stack file (else a commented "
              "template docker-compose.yml is written)")
@click.option("--runbook", type=click.Path(path_type=Path), help="your incident runbook (markdown)")
@click.option("--package", default="drill_steps", show_default=True, help="package for your own steps and faults")
@click.option("--force", is_flag=True, help="overwrite files that already exist")
@friendly_errors
def init(directory: Path, sections: str, stack: Path | None, runbook: Path | None, package: str, force: bool) -> None:
    """Make DIRECTORY (default: here) a drill project: drill.toml, stack file, starter features, a steps package."""
    from harness.scaffold import plan_init, write_plan

    chosen = [s.strip() for s in sections.split(",") if s.strip()]
    plan = plan_init(directory, sections=chosen, stack=stack, runbook=runbook, package=package, force=force)
    for path in write_plan(plan):
        console.print(f"wrote {rel(path)}")
    console.print(
        "\nnext: describe your services and where your truth is read in the stack file (every CHANGE line), then\n"
        "  drill lint            # every step defined, every tag known\n"
        "  drill stack up        # start the stack and see its endpoints\n"
        "  drill run --dry-run   # what each drill would inject and expect\n"
        "  drill run             # the drills, for real"
    )


# --- drill list / steps / lint ---------------------------------------------------------------------


@main.command("list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@friendly_errors
def list_(paths: tuple[Path, ...]) -> None:
    """Features and scenarios with their tags and deadlines."""
    from harness.catalog import scenarios

    table = Table(title="Drills", show_lines=False)
    for col in ("feature", "scenario", "tags", "deadlines / RTO", "where"):
        table.add_column(col)
    found = scenarios(list(paths) or [default_features()])
    for sc in found:
        name = sc.name + (f"  [dim](x{sc.examples})[/]" if sc.examples else "")
        where = f"{rel(sc.feature_file)}:{sc.line}"
        table.add_row(sc.feature, name, " ".join("@" + t for t in sc.tags), "; ".join(sc.deadlines), where)
    console.print(table)
    console.print(f"{len(found)} scenarios")


@main.command()
@friendly_errors
def steps() -> None:
    """The step catalogue: pattern, parameters, what it does, where it is defined."""
    from harness.catalog import load_step_library

    table = Table(title="Step library", show_lines=True)
    for col in ("type", "pattern", "what it does", "where"):
        table.add_column(col)
    defs = load_step_library()
    for d in defs:
        table.add_row(d.type.capitalize(), d.pattern, d.doc.split("\n\n")[0], d.where)
    console.print(table)
    console.print(f"{len(defs)} step definitions")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--runbook",
    "runbook_file",
    type=click.Path(path_type=Path),
    help="lint this runbook instead (TODOs, "
    "placeholders, unknown commands/make targets, absolute paths, sections no drill follows)",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="with --runbook: a running stack's working directory, to check that the files commands read exist",
)
@stack_file_option
@friendly_errors
def lint(paths: tuple[Path, ...], runbook_file: Path | None, workdir: Path | None, stack_file: Path | None) -> None:
    """Check features before running them: undefined/ambiguous steps, unregistered tags, bad deadlines, and
    links, services, modes and runbook steps the stack file (--stack-file) does not have."""
    from harness.catalog import feature_files
    from harness.catalog import lint as lint_features

    if runbook_file is not None:
        from harness.runbook.cli import lint_runbook_command

        return lint_runbook_command(
            runbook_file,
            features=feature_files(list(paths) or [default_features()]),
            stack_file=stack_file,
            workdir=workdir,
        )
    files = feature_files(list(paths) or [default_features()])
    problems = lint_features(files)
    stack_path = stack_file or default_stack_file()
    if stack_path.is_file() and not any(p.is_error for p in problems):  # what the steps name must exist
        from harness.catalog import reference_problems
        from harness.stack import load_stack

        problems += reference_problems(files, load_stack(stack_path))
    for p in problems:
        path, _, line = p.location.partition(":")
        color = "red" if p.is_error else "yellow"
        level = "" if p.is_error else "warning: "
        console.print(f"[{color}]{rel(Path(path))}{':' + line if line else ''}[/] {level}{escape(p.message)}")
    errors = sum(1 for p in problems if p.is_error)
    warnings = len(problems) - errors
    if errors:
        console.print(
            f"[bold red]{errors} problem(s)[/], {warnings} warning(s) in {len(files)} feature file(s)"
        )
        sys.exit(EXIT_INPUT)
    console.print(
        f"[green]ok[/]: {len(files)} feature file(s), every step defined once, tags registered"
        + (f"; {warnings} warning(s)" if warnings else "")
    )


# --- drill stack up / status / down ------------------------------------------------------------------


@main.group()
def stack() -> None:
    """Run the stack by hand, for exploration."""


def _stack_dir(run_dir: Path | None) -> Path:
    return (run_dir or default_runs() / "manual").resolve()


@stack.command("up")
@backend_option
@stack_file_option
@click.option("--run-dir", type=click.Path(path_type=Path), help="default: runs/manual")
@friendly_errors
def stack_up(backend: str | None, stack_file: Path | None, run_dir: Path | None) -> None:
    """Start the stack and print its endpoints."""
    from harness.backends import create_backend
    from harness.stack import load_stack

    description = load_stack(stack_file or default_stack_file())
    b = create_backend(backend or current_project().backend, description, _stack_dir(run_dir), detached=True)
    with console.status("starting the stack..."):
        b.up()
    _print_status(b)
    console.print(f"\nstop it with: drill stack down --run-dir {rel(_stack_dir(run_dir))}")


@stack.command("status")
@click.option("--run-dir", type=click.Path(path_type=Path), help="default: runs/manual")
@friendly_errors
def stack_status(run_dir: Path | None) -> None:
    """State and endpoints of every service of a stack started with `drill stack up`."""
    from harness.backends import attach_backend

    _print_status(attach_backend(_stack_dir(run_dir)))


@stack.command("down")
@click.option("--run-dir", type=click.Path(path_type=Path), help="default: runs/manual")
@friendly_errors
def stack_down(run_dir: Path | None) -> None:
    """Stop every service of the stack (rolling back any fault left in its ledger first)."""
    from harness.backends import attach_backend
    from harness.faults.ledger import cleanup as ledger_cleanup

    b = attach_backend(_stack_dir(run_dir))
    report = ledger_cleanup(b, b.run_dir)
    b.down()
    console.print(report.summary())
    console.print("stack stopped")
    report.raise_if_failed()


def _print_status(b: Any) -> None:
    from harness.backends.base import ServiceState

    table = Table(title=f"stack {b.stack.name} ({b.name} backend, {b.run_dir})")
    for col in ("service", "state", "endpoints"):
        table.add_column(col)
    colors = {ServiceState.RUNNING: "green", ServiceState.PAUSED: "yellow"}
    for name, spec in b.stack.services.items():
        state = b.state(name)
        eps = ", ".join(f"{pn}={b.endpoint(name, pn).address}" for pn in spec.ports)
        table.add_row(name, f"[{colors.get(state, 'red')}]{state.value}[/]", eps)
    console.print(table)
    for name, link in b.links.items():
        console.print(f"link {name}: {link.listen} -> {link.upstream} (toxiproxy proxy {link.proxy_name})")
    console.print(f"stack working directory: {b.workdir}")


# --- drill cleanup / halt ---------------------------------------------------------------------------------


@main.command()
@click.option(
    "--run-dir", "run_dirs", multiple=True, type=click.Path(path_type=Path), help="default: every run under ./runs"
)
@click.option("--down/--keep", default=False, help="also stop the stack after reverting its faults")
@click.option("--force", is_flag=True, help="with --run-dir: also a live run's faults (asks first)")
@friendly_errors
def cleanup(run_dirs: Sequence[Path], down: bool, force: bool) -> None:
    """Revert what crashed or killed runs left behind; stop the stacks of dead runs. Live runs are left alone."""
    from harness.backends import reap_dead_runs
    from harness.maintenance import cleanup_runs, find_runs

    if force and not run_dirs:
        raise click.UsageError("--force needs the live run named: --force --run-dir DIR")
    for note in reap_dead_runs():  # containers, networks, volumes of docker runs whose drill process died
        console.print(note)
    outcome = cleanup_runs(
        find_runs(run_dirs, default_runs()), down=down, force=force, confirm=lambda q: click.confirm(q, default=False)
    )
    _finish(outcome)


@main.command()
@click.option(
    "--run-dir", "run_dirs", multiple=True, type=click.Path(path_type=Path), help="default: every run under ./runs"
)
@click.option("--reason", default="", help="why (written into the HALT file)")
@friendly_errors
def halt(run_dirs: Sequence[Path], reason: str) -> None:
    """Emergency stop: block new faults in every live drill (HALT file) and revert every fault they injected."""
    from harness.maintenance import find_runs, halt_runs

    _finish(halt_runs(find_runs(run_dirs, default_runs()), reason=reason))


@main.command()
@click.option(
    "--run-dir", "run_dirs", multiple=True, type=click.Path(path_type=Path), help="default: every run under ./runs"
)
@friendly_errors
def resume(run_dirs: Sequence[Path]) -> None:
    """Remove the HALT files written by `drill halt`, so faults may be injected again."""
    from harness.maintenance import find_runs, resume_runs

    _finish(resume_runs(find_runs(run_dirs, default_runs())))


def _finish(outcome: Any) -> None:
    for line in outcome.lines:
        console.print(line, markup=False, soft_wrap=True)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


for _command in (report_command, docs_command, plan_command, gameday_command, coverage_command):
    main.add_command(_command)

if __name__ == "__main__":
    main()

"""``drill report``, ``drill docs``, ``drill plan`` and ``drill gameday`` (registered in :mod:`harness.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from harness.project import current_project

P = ParamSpec("P")
R = TypeVar("R")
EXIT_FAILED = 1
# harness.cli imports this module to register its commands: its helpers are looked up at call time.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """harness.cli.friendly_errors, resolved when the command runs (no import cycle)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from harness.cli import friendly_errors as wrap

        return wrap(fn)(*args, **kwargs)

    return wrapper


def default_features() -> Path:
    return current_project().features


def default_runs() -> Path:
    return current_project().reports


def default_stack_file() -> Path:
    return current_project().stack


@click.command("report")
@click.argument("report_dir", type=click.Path(path_type=Path))
@friendly_errors
def report(report_dir: Path) -> None:
    """Regenerate junit.xml, cucumber.json, report.html and postmortems/ from REPORT_DIR's journal(s)."""
    from harness.report import write_reports

    files = write_reports(report_dir.resolve())
    run = files.run
    for path in files.all():
        console.print(f"wrote {path}")
    totals = ", ".join(f"{n} {s}" for s, n in sorted(run.totals.items())) or "no scenario"
    console.print(f"{len(run.scenarios)} scenario(s): {totals}")
    if run.stopped_at:
        console.print(f"[yellow]the run did not finish[/]: {run.stopped_at}")


@click.command("docs")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("living-docs"), show_default=True,
              help="output directory")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True)
@click.option("--runs", "runs_dir", type=click.Path(path_type=Path), default=None,
              help="where to find the newest runs/report-*/journal.json (default: ./runs)")
@friendly_errors
def docs(paths: tuple[Path, ...], out_dir: Path, fmt: str, runs_dir: Path | None) -> None:
    """Living documentation: the drills grouped by runbook section, with their last results."""
    from harness.catalog import feature_files
    from harness.report.docs import write_docs

    files = feature_files(list(paths) or [default_features()])
    path = write_docs(files, out_dir, fmt, runs_dir or default_runs())
    console.print(f"wrote {path} ({len(files)} feature file(s))")


@click.command("plan")
@click.option("--runs", "runs_dir", type=click.Path(path_type=Path), default=None, help="default: ./runs")
@click.option("--runbook", type=click.Path(path_type=Path), default=None,
              help="runbook with the quarterly drill list (default: docs/incident-response-runbook.md)")
@friendly_errors
def plan(runs_dir: Path | None, runbook: Path | None) -> None:
    """The year's quarterly drill calendar, each drill's last run and result, and what is due."""
    from harness.report.plan import build_plan, describe_due, drill_runs, load_runs
    from harness.report.runbook_text import find_runbook, quarterly_drills

    path = find_runbook(runbook)
    titles = quarterly_drills(path.read_text(encoding="utf-8") if path and path.is_file() else None)
    today = datetime.now(UTC).date()
    rows = build_plan(titles, drill_runs(load_runs(runs_dir or default_runs())), today)
    table = Table(title=f"Quarterly drills {today.year} (today {today})")
    for col in ("quarter", "drill", "window", "last run", "result", "status"):
        table.add_column(col)
    colors = {"done": "green", "done (late)": "green", "due now": "yellow", "overdue": "red", "upcoming": "dim"}
    for r in rows:
        last = r.last
        table.add_row(r.quarter, r.title, f"{r.window[0]} .. {r.window[1]}",
                      f"{last.day} ({last.where.name})" if last else "never",
                      last.result if last else "-", f"[{colors.get(r.status, 'white')}]{r.status}[/]")
    console.print(table)
    console.print(describe_due(rows, today))


@click.command("gameday")
@click.argument("quarter")
@click.option("--auto", is_flag=True, help="the harness plays the on-call (ends the fault, runs the recovery commands)")
@click.option("--stack-file", type=click.Path(path_type=Path), default=None, help="default: ./docker-compose.yml")
@click.option("--backend", default="process", show_default=True)
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="default: runs/gameday-<quarter>-<time>")
@click.option("--runbook", type=click.Path(path_type=Path), default=None,
              help="the team's runbook (default: docs/incident-response-runbook.md)")
@click.option("--rto", "rto_s", type=float, default=None, help="RTO target in seconds (default: the quarter's)")
@click.option("--role", "roles", multiple=True, help="ROLE=NAME, skips that prompt (owner, coordinator, on-call, "
              "observer, reporter)")
@click.option("--max-minutes", type=float, default=15.0, show_default=True,
              help="end the drill if not recovered by then")
def gameday(quarter: str, auto: bool, stack_file: Path | None, backend: str, report_dir: Path | None,
            runbook: Path | None, rto_s: float | None, roles: tuple[str, ...], max_minutes: float) -> None:
    """GameDay: the quarterly drill with people in the loop (Q1..Q4)."""
    from harness.gameday import ROLES, Options, quarter_drill, run_gameday
    from harness.report.runbook_text import find_runbook

    @friendly_errors
    def go() -> int:
        spec = quarter_drill(quarter)
        named: dict[str, str] = {}
        for item in roles:
            role, sep, name = item.partition("=")
            if not sep or role not in ROLES:
                raise click.BadParameter(f"expected ROLE=NAME with ROLE one of {', '.join(ROLES)}; observed {item!r}",
                                         param_hint="--role")
            named[role] = name
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        target = (report_dir or default_runs() / f"gameday-{spec.quarter.lower()}-{stamp}").resolve()
        options = Options(
            quarter=spec.quarter, auto=auto, stack_file=(stack_file or default_stack_file()).resolve(),
            backend=backend, report_dir=target, runbook=find_runbook(runbook), rto_s=rto_s, roles=named,
            max_s=max_minutes * 60,
        )
        return run_gameday(options)

    code = go()
    sys.exit(code if code in (0, 130) else EXIT_FAILED if code == 1 else code)

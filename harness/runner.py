"""``drill run``: run the drill features through pytest (in-process) and print the verdict table.

The features are executed by the step library in ``scenarios/`` with the ``drill`` pytest plugin;
results come back through the run journal, so the table shows exactly what the report will.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from harness.journal import load_journal
from harness.preflight import preflight
from harness.project import DrillProject, binding_module

PYTEST_TO_EXIT = {0: 0, 1: 1, 2: 130, 3: 3, 4: 2, 5: 5}


class ProgressReporter:
    """Prints one line per scenario as it finishes (pytest's own terminal output is off by default)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.count = 0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.console.print(f"[red]collection error[/] in {report.nodeid}:\n{report.longreprtext[-3000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.console.print(f"running {len(session.items)} scenario(s)\n")

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.console.print(f"[dim]▶ {_scenario_name(nodeid)} ...[/]")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.count += 1
            name = _scenario_name(report.nodeid)
            if report.passed:
                self.console.print(f"[green]✔ passed[/] {name} [dim]({report.duration:.1f}s)[/]")
            elif report.skipped:
                self.console.print(f"[yellow]- skipped[/] {name}")
            else:
                crash = getattr(report.longrepr, "reprcrash", None)
                reason = crash.message if crash is not None else str(report.longrepr)[-1500:]
                self.console.print(f"[red]✘ failed[/] {name} [dim]({report.duration:.1f}s)[/]\n  {reason}")
        elif report.when == "teardown" and report.failed:
            self.console.print(
                f"[red]✘ teardown error[/] {_scenario_name(report.nodeid)}:\n{report.longreprtext[-1500:]}"
            )


def _scenario_name(nodeid: str) -> str:
    name = nodeid.split("::")[-1]
    return name.removeprefix("test_").replace("_", " ")


def run_drills(
    *,
    project: DrillProject,
    features: list[Path],
    marker: str | None,
    backend: str,
    stack_file: Path,
    report_dir: Path,
    dry_run: bool,
    allow_live: bool,
    confirm_live: str | None,
    exitfirst: bool,
    verbose: bool,
    console: Console,
) -> int:
    project.import_modules()  # a team step module that fails to import is bad input (exit 2), before pytest
    preflight(
        stack_file, backend, dry_run, features=features, marker=marker, report_dir=report_dir, allow_live=allow_live
    )
    module = binding_module(features, report_dir / ".drill")
    args = [
        str(module),
        "--rootdir",
        str(project.root),
        "-c",
        str(module.parent / "pytest.ini"),
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "--drill-project",
        str(project.root),
        "--backend",
        backend,
        "--stack-file",
        str(stack_file),
        "--drill-report",
        str(report_dir),
        "--run-dir",
        str(report_dir / "runs"),
    ]
    if marker:
        args += ["-m", marker]
    if dry_run:
        args += ["--dry-run", "-s"]  # -s: the plan is printed as the scenarios run
    if allow_live:
        args.append("--allow-live")
        if confirm_live is not None:
            args += ["--confirm-live", confirm_live]
    if exitfirst:
        args.append("-x")
    plugins: list[Any] = []
    if verbose:
        args.append("-v")
    else:
        args += ["-p", "no:terminal"]
        plugins.append(ProgressReporter(console))
    console.print(f"[bold]drill run[/] on the [bold]{backend}[/] backend, stack {stack_file}, report in {report_dir}")
    code = int(pytest.main(args, plugins=plugins))
    journal_path = report_dir / "journal.json"
    if journal_path.exists():
        print_summary(load_journal(journal_path), console)
        from harness.report import write_reports

        files = write_reports(report_dir)
        console.print(f"report: {files.html} (also junit.xml, cucumber.json, postmortems/)")
    if code == 5:
        console.print("[yellow]no scenario matched the selection[/]")
    return PYTEST_TO_EXIT.get(code, 1)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def print_summary(journal: dict[str, Any], console: Console) -> None:
    table = Table(title="Drill results")
    for col in ("feature", "scenario", "sev", "detected in", "RTO (target)", "verdict"):
        table.add_column(col)
    totals: dict[str, int] = {}
    for sc in journal["scenarios"]:
        ms = {m["name"]: m for m in sc.get("measurements", [])}
        mttd, rto = ms.get("MTTD"), ms.get("RTO")
        rto_text = "-"
        if rto is not None:
            target = rto.get("target_s")
            rto_text = f"{_fmt(rto.get('value_s'))} ({_fmt(target) if target is not None else 'no target'})"
        status = sc["status"]
        totals[status] = totals.get(status, 0) + 1
        color = {"passed": "green", "failed": "red", "error": "red"}.get(status, "yellow")
        sev = next((t.upper() for t in sc["tags"] if t in ("p0", "p1", "p2", "p3")), "")
        table.add_row(
            sc["feature"],
            sc["scenario"],
            sev,
            _fmt(mttd.get("value_s")) if mttd else "-",
            rto_text,
            f"[{color}]{status}[/]",
        )
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in sorted(totals.items())) or "no scenarios ran")


__all__ = ["run_drills", "print_summary", "preflight"]

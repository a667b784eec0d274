"""``drill run``: run the drill features through pytest (in-process) and print the verdict table.

The features are executed by the step library in ``scenarios/`` with the ``drill`` pytest plugin;
results come back through the run journal(s), so the table shows exactly what the report will.

With ``workers`` (``drill run -n N|auto``) the scenarios are spread over pytest-xdist workers. Each
scenario already starts its own stack in its own run directory, so workers share nothing; each
writes ``journal-<worker>.json``, and the table and every report are built from all of them
merged. Progress lines come from every worker (through xdist's reports to the controller). On
Ctrl-C every worker rolls back its faults and stops its stack; anything a worker could not finish
(killed before its teardown) is reverted and stopped by a final sweep of the run directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from harness.cli_shared import EXIT_SAFETY
from harness.plugin import HALTED_PROPERTY, skip_reason
from harness.preflight import preflight
from harness.project import DrillProject, binding_module

if TYPE_CHECKING:
    from rich.console import Console

    from harness.report.model import Run

PYTEST_TO_EXIT = {0: 0, 1: 1, 2: 130, 3: 3, 4: 2, 5: 5}
# The plugins a drill run needs, loaded by name: pytest's entry-point autoload is off for a drill run, so
# other pytest plugins installed in the environment cost nothing (faker's alone took 0.4 s per run).
DRILL_PLUGINS = ("harness.plugin", "pytest_bdd.plugin")
XDIST_PLUGINS = ("xdist.plugin",)
NO_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
SCENARIO_PROPERTY = "drill_scenario"  # harness.plugin puts each scenario's real name in its reports under this
WORKER_PID_PROPERTY = "drill_worker_pid"  # ... and, under xdist, the worker's pid


@dataclass(frozen=True)
class RunSettings:
    """Everything ``drill run`` was asked to do, parsed once by the CLI."""

    project: DrillProject
    report_dir: Path
    stack_file: Path
    backend: str = "process"
    backend_source: str | None = None  # where the backend was named when not by --backend (the project's config)
    features: tuple[Path, ...] = ()  # the feature files to bind (every one of the project's, unless PATHS)
    marker: str | None = None  # pytest -m expression over the Gherkin tags
    dry_run: bool = False
    allow_live: bool = False
    confirm_live: str | None = None
    exitfirst: bool = False
    verbose: bool = False
    workers: int | Literal["auto"] | None = None  # None: serial; "auto": see auto_workers()


def auto_workers() -> int:
    """Workers for ``-n auto``: three per core. A drill spends most of its time waiting on deadlines and
    alert rules, not computing: on 2 cores the 23 drills of this project used 1.2 cores with 4 workers
    (73.7 s) and finished in 57.4 s with 6, all passed, on a machine busy with other work."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, 3 * cpus)


def worker_count(settings: RunSettings) -> int:
    """How many xdist workers this run uses; 0 means serial, in this process."""
    if settings.workers is None or settings.dry_run:  # a dry run touches nothing: it is instant serially
        return 0
    return auto_workers() if settings.workers == "auto" else settings.workers


def _property(report: Any, name: str) -> object:
    return next((value for key, value in getattr(report, "user_properties", ()) if key == name), None)


def _report_title(report: Any) -> str:
    title = _property(report, SCENARIO_PROPERTY)
    if title is not None:
        return str(title)
    name = str(report.nodeid).split("::")[-1]
    return name.removeprefix("test_").replace("_", " ")


class WorkerStopper:
    """Stops every xdist worker the way Ctrl-C stops a serial run: their faults roll back, their stacks stop.

    xdist alone lets each worker finish the scenarios already sent to it (after ``-x``), or kills
    workers that do not exit within 10 s (after SIGTERM): neither is what a drill run promises.
    The workers' pids come with their reports. Ctrl-C at a terminal reaches every worker already
    (one process group), so it is never forwarded: a second signal could cut a rollback short.
    """

    def __init__(self, *, exitfirst: bool) -> None:
        self.exitfirst = exitfirst
        self.pids: set[int] = set()
        self.stopped = False
        self.failed = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pid = _property(report, WORKER_PID_PROPERTY)
        if isinstance(pid, int):
            self.pids.add(pid)
        self.failed = self.failed or report.failed
        if self.exitfirst and report.failed and not self.stopped:
            self.stop(signal.SIGINT)

    def stop(self, signum: int) -> None:
        self.stopped = True
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):  # that worker has already exited
                os.kill(pid, signum)

    def on_sigterm(self, signum: int, frame: object) -> None:
        self.stop(signal.SIGTERM)  # each worker's drill plugin unwinds SIGTERM like Ctrl-C
        raise KeyboardInterrupt(f"signal {signum}")


class ProgressReporter:
    """One line when a scenario starts and one when it ends, named as the feature names it.

    pytest's own terminal output is off by default. Under xdist this runs in the controller and
    sees every worker's reports, so each line says which worker ran it.
    """

    def __init__(self, console: Console, *, dry_run: bool = False, workers: int = 0) -> None:
        self.console = console
        self.dry_run = dry_run
        self.workers = workers
        self.started = time.monotonic()
        self.count = 0
        self._said = False

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.console.print(f"[red]collection error[/] in {report.nodeid}:\n{report.longreprtext[-3000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.workers:  # under xdist the controller collects nothing: the workers say it
            self.console.print(f"running {len(session.items)} scenario(s)\n")

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self._said:  # every worker collects the same scenarios: say it once
            self._said = True
            self.console.print(f"running {len(ids)} scenario(s) on {self.workers} workers\n")

    @staticmethod
    def _worker(report: Any) -> str:
        node = getattr(report, "node", None)  # xdist sets it on reports that came from a worker
        gateway = getattr(node, "gateway", None)
        return f"[dim]\\[{gateway.id}][/] " if gateway is not None else ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = _report_title(report)
        who = self._worker(report)
        if report.when == "setup" and report.passed:
            self.console.print(f"{who}[dim]▶ {name} ...[/]")
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.count += 1
            if report.passed and self.dry_run:
                self.console.print(f"{who}[blue]○ planned[/] {name} [dim](dry run: nothing ran)[/]")
            elif report.passed:
                self.console.print(f"{who}[green]✔ passed[/] {name} [dim]({report.duration:.1f}s)[/]")
            elif report.skipped:  # always with its reason: a drill never skips silently
                self.console.print(f"{who}[yellow]- skipped[/] {name}\n  {skip_reason(report)}")
            elif _property(report, HALTED_PROPERTY) is not None:
                reason = str(_property(report, HALTED_PROPERTY)).replace("\n", " ")
                self.console.print(f"{who}[yellow]■ halted[/] {name} [dim]({report.duration:.1f}s)[/]\n  {reason}")
            else:
                crash = getattr(report.longrepr, "reprcrash", None)
                reason = crash.message if crash is not None else str(report.longrepr)[-1500:]
                self.console.print(f"{who}[red]✘ failed[/] {name} [dim]({report.duration:.1f}s)[/]\n  {reason}")
        elif report.when == "teardown" and report.failed:
            self.console.print(f"{who}[red]✘ teardown error[/] {name}:\n{report.longreprtext[-1500:]}")


def pytest_args(settings: RunSettings, module: Path, *, durations: Path | None = None) -> list[str]:
    """The pytest command line of a run that collects ``module`` (see :func:`harness.project.binding_module`).

    ``durations``: an earlier run's scenario durations (:func:`write_durations`), so that a parallel run
    starts its longest scenarios first.
    """
    report_dir = settings.report_dir
    workers = worker_count(settings)
    args = [
        str(module),
        "--rootdir",
        str(settings.project.root),
        "-c",
        str(module.parent / "pytest.ini"),
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "--drill-project",
        str(settings.project.root),
        "--backend",
        settings.backend,
        "--stack-file",
        str(settings.stack_file),
        "--drill-report",
        str(report_dir),
        "--run-dir",
        str(report_dir / "runs"),
    ]
    if settings.marker:
        args += ["-m", settings.marker]
    if settings.dry_run:
        args += ["--dry-run", "-s"]  # -s: the plan is printed as the scenarios run
    if settings.allow_live:
        args.append("--allow-live")
        if settings.confirm_live is not None:
            args += ["--confirm-live", settings.confirm_live]
    if settings.exitfirst:
        args.append("-x")
    for plugin in DRILL_PLUGINS + (XDIST_PLUGINS if workers else ()):
        args += ["-p", plugin]
    if workers:
        args += ["-n", str(workers), "--dist", "load"]  # each idle worker takes the next scenario
        if durations is not None:
            args += ["--drill-durations", str(durations)]
    if settings.verbose:
        args.append("-v")
    else:
        args += ["-p", "no:terminal"]
    return args


def write_durations(report_dir: Path, into: Path) -> Path | None:
    """The newest earlier run's durations as ``into/durations.json``; None when there is no earlier run."""
    durations = earlier_durations(report_dir)
    if not durations:
        return None
    path = into / "durations.json"
    path.write_text(json.dumps(durations, indent=1, sort_keys=True), encoding="utf-8")
    return path


def earlier_durations(report_dir: Path, *, reports: int = 10) -> dict[str, dict[str, float]]:
    """{feature file name: {scenario: seconds}} from the newest earlier reports beside ``report_dir``.

    Each scenario takes its duration from the newest of the last ``reports`` runs that passed it, so a run
    of a few features does not hide the others. Only an ordering hint for parallel runs (longest first); a
    scenario that did not pass is left out, so a scenario that failed fast is not taken for a short one.
    """
    from harness.report.model import journal_files

    earlier = sorted((d for d in report_dir.parent.glob("report-*") if d.is_dir() and d != report_dir),
                     key=lambda d: d.name, reverse=True)
    found: dict[str, dict[str, float]] = {}
    for report in earlier[:reports]:
        for path in journal_files(report):
            try:
                scenarios = json.loads(path.read_text(encoding="utf-8")).get("scenarios") or []
            except (OSError, ValueError, AttributeError):
                continue
            for sc in scenarios:
                passed = isinstance(sc, dict) and sc.get("status") == "passed"
                if passed and isinstance(sc.get("duration_s"), int | float):
                    feature = Path(str(sc.get("feature_file") or "")).name
                    found.setdefault(feature, {}).setdefault(str(sc.get("scenario")), float(sc["duration_s"]))
    return found


def run_drills(settings: RunSettings, console: Console) -> int:
    """Run the drills; print progress, the verdict table and where the reports are. Returns the exit code."""
    import pytest

    settings.project.import_modules()  # a team step module that fails to import is bad input (exit 2), before pytest
    preflight(settings.stack_file, settings.backend, settings.dry_run, features=settings.features,
              marker=settings.marker, report_dir=settings.report_dir, allow_live=settings.allow_live,
              backend_source=settings.backend_source)
    module = binding_module(list(settings.features), settings.report_dir / ".drill")
    workers = worker_count(settings)
    plugins: list[Any] = []
    if not settings.verbose:
        plugins.append(ProgressReporter(console, dry_run=settings.dry_run, workers=workers))
    where = f"{workers} parallel workers" if workers else "serially"
    console.print(
        f"[bold]drill run[/] on the [bold]{settings.backend}[/] backend ({where}), stack {settings.stack_file}, "
        f"report in {settings.report_dir}"
    )
    if settings.dry_run and settings.workers is not None:
        console.print("[dim]dry run: -n ignored (nothing is started, so it runs serially)[/]")
    stopper = WorkerStopper(exitfirst=settings.exitfirst)
    previous_sigterm = None
    if workers:
        plugins.append(stopper)
        if threading.current_thread() is threading.main_thread():
            previous_sigterm = signal.signal(signal.SIGTERM, stopper.on_sigterm)
    saved = os.environ.get(NO_AUTOLOAD)
    os.environ[NO_AUTOLOAD] = "1"  # xdist workers inherit it, and get the same -p list
    try:
        durations = write_durations(settings.report_dir, module.parent) if workers else None
        code = int(pytest.main(pytest_args(settings, module, durations=durations), plugins=plugins))
    finally:
        if saved is None:
            os.environ.pop(NO_AUTOLOAD, None)
        else:
            os.environ[NO_AUTOLOAD] = saved
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    if workers and code != 0:
        _sweep(settings.report_dir / "runs", console)
    if stopper.exitfirst and stopper.failed and code == pytest.ExitCode.INTERRUPTED:
        code = pytest.ExitCode.TESTS_FAILED  # xdist ends a -x run as "interrupted": it stopped on a failure
    from harness.report.model import journal_files

    verdicts: dict[str, int] = {}
    if journal_files(settings.report_dir):
        from harness.report import write_reports

        files = write_reports(settings.report_dir)
        verdicts = files.run.totals
        print_summary(files.run, console)
        console.print(f"report: {files.html} (also junit.xml, cucumber.json, postmortems/)")
    if code == 5:
        console.print("[yellow]no scenario matched the selection[/]")
    return exit_code(code, verdicts)


def exit_code(pytest_code: int, verdicts: dict[str, int]) -> int:
    """The documented exit code of a run: pytest's, except that a run `drill halt` stopped exits 4.

    A halt is a safety stop, not a failed drill; but a scenario that failed for its own reasons
    still makes the run exit 1 (a halt never hides a real failure).
    """
    if pytest_code == pytest.ExitCode.TESTS_FAILED and verdicts.get("halted") and not (
        verdicts.get("failed") or verdicts.get("error")
    ):
        return EXIT_SAFETY
    return PYTEST_TO_EXIT.get(pytest_code, 1)


def _sweep(run_root: Path, console: Console) -> None:
    """After a parallel run that did not pass: revert and stop what a killed worker left running."""
    from harness.backends import attach_backend
    from harness.backends.base import ServiceState
    from harness.backends.reaper import STATE_FILE
    from harness.errors import DrillError
    from harness.faults.ledger import cleanup as ledger_cleanup

    for state in sorted(run_root.glob(f"*/{STATE_FILE}")):
        try:
            backend = attach_backend(state.parent)
            alive = [s for s in backend.stack.services if backend.state(s) in (ServiceState.RUNNING,
                                                                              ServiceState.PAUSED)]
            if not alive:
                continue
            report = ledger_cleanup(backend, backend.run_dir)
            backend.down()
            console.print(f"[yellow]swept[/] {state.parent.name}: {report.summary()}; stack stopped")
        except DrillError as exc:
            console.print(f"[red]could not sweep[/] {state.parent}: {exc.message}; run `drill cleanup`")


def print_summary(run: Run, console: Console) -> None:
    """The verdict table: one row per scenario of every journal of the run (xdist workers merged)."""
    from rich.table import Table

    table = Table(title="Drill results")
    for col in ("feature", "scenario", "sev", "detected in", "RTO (target)", "verdict"):
        table.add_column(col)
    colors = {"passed": "green", "failed": "red", "error": "red", "interrupted": "red", "planned": "blue"}
    for sc in run.scenarios:
        mttd = sc.mttd
        rto, _ = sc.rto_summary
        table.add_row(
            sc.feature,
            sc.name,
            sc.severity,
            "-" if mttd is None or mttd.value_s is None else f"{mttd.value_s:.1f}s",
            rto,
            f"[{colors.get(sc.verdict, 'yellow')}]{sc.verdict}[/]",
        )
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in sorted(run.totals.items())) or "no scenarios ran")
    if run.stopped_at:
        console.print(f"[yellow]{run.stopped_at}[/]")


__all__ = ["RunSettings", "run_drills", "print_summary", "preflight", "pytest_args"]

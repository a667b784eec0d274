"""The pytest plugin (entry point ``pytest11: drill``): options, fixtures, and the run journal.

Options (group "drill"): ``--backend``, ``--stack-file``, ``--run-dir``, ``--drill-report``,
``--dry-run``, ``--allow-live``/``--confirm-live``, ``--drill-feature`` (select scenarios by
feature file). Fixtures:

* ``drill_settings`` (session): the parsed options, as a frozen :class:`DrillSettings`.
* ``drill_backend``: a fresh stack per scenario, started on the chosen backend and brought down
  afterwards (after every fault was rolled back). Each scenario starts from a known healthy stack.
* ``drill``: the :class:`~harness.drill.Drill` a scenario's steps act through: it injects faults
  (always rolled back at teardown, whatever happened), waits on probes, runs the operator CLI and
  keeps the timeline.

The plugin records each scenario's steps, faults, timeline and measurements in
``<drill-report>/journal.json`` after every scenario, so even a crashed run leaves a journal.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.journal import JOURNAL_FILE, Journal, ScenarioRecord, StepRecord, git_revision

QUARTER_TAGS = ("q1", "q2", "q3", "q4")
SEVERITY_TAGS = ("p0", "p1", "p2", "p3")
_RECORD = pytest.StashKey[ScenarioRecord]()
_STEP_START = pytest.StashKey[float]()
_DRILL = pytest.StashKey[Any]()
_JOURNAL = pytest.StashKey[Journal]()
_STACK_UP = pytest.StashKey[float]()
_STEP = pytest.StashKey[Any]()
SCENARIO_PROPERTY = "drill_scenario"  # user property: the scenario's name with its Examples values filled in
WORKER_PID_PROPERTY = "drill_worker_pid"  # user property under xdist: `drill run -n` stops its workers by pid
HALTED_PROPERTY = "drill_halted"  # report property: `drill halt` stopped this scenario (value: the error, with reason)


@dataclass(frozen=True)
class DrillSettings:
    backend: str
    stack_file: Path
    run_root: Path
    report_dir: Path | None
    dry_run: bool
    allow_live: bool
    confirm_live: str | None
    features: tuple[Path, ...]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("drill", "trading incident drills")
    group.addoption(
        "--backend", default="process", help="stack backend: process (default), docker, attach or kubernetes"
    )
    group.addoption("--stack-file", default=None, help="stack description (default: ./docker-compose.yml)")
    group.addoption("--run-dir", default=None, help="where run directories go (default: ./runs)")
    group.addoption("--drill-report", default=None, help="write the run journal (journal.json) into this directory")
    group.addoption("--dry-run", action="store_true", default=False, help="describe faults; touch nothing")
    group.addoption("--allow-live", action="store_true", default=False, help="allow drilling a stack in live mode")
    group.addoption("--confirm-live", default=None, help="with --allow-live: type the stack's name to confirm")
    group.addoption(
        "--drill-feature", action="append", default=[], help="only scenarios of this feature file (repeatable)"
    )
    group.addoption(
        "--drill-durations",
        default=None,
        help="a JSON file {feature file: {scenario: seconds}} of an earlier run: scenarios start longest first",
    )
    group.addoption(
        "--drill-project",
        default=None,
        help="the drill project's directory: load the shared step library and the project's own steps and tags",
    )


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (CI cancelling the job, `kill`) unwinds like Ctrl-C, so every fault's rollback runs.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    for tag in QUARTER_TAGS:
        config.addinivalue_line("markers", f"{tag}: quarterly drill {tag.upper()} of the runbook")
    for tag in SEVERITY_TAGS:
        config.addinivalue_line("markers", f"{tag}: incident severity {tag.upper()}")
    _configure_project(config)
    report = config.getoption("--drill-report")
    if report:
        worker = getattr(config, "workerinput", {}).get("workerid")
        name = JOURNAL_FILE if worker is None else f"journal-{worker}.json"
        stack_file = config.getoption("--stack-file") or str(Path.cwd() / "docker-compose.yml")
        config.stash[_JOURNAL] = Journal(
            path=Path(report) / name,
            backend=config.getoption("--backend"),
            stack_file=stack_file,
            revision=git_revision(Path(config.rootpath)),
        )


def _configure_project(config: pytest.Config) -> None:
    """Register a drill project's tags as markers; under `drill run`, also load its steps as plugins.

    Plain pytest sessions outside a drill project are left alone.
    """
    from harness.project import current_project, find_project

    explicit = config.getoption("--drill-project")
    project = current_project(Path(explicit)) if explicit else find_project(Path(config.rootpath))
    if project is None:
        return
    for tag, meaning in project.tags.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")
    if not explicit:
        return  # plain pytest in a drill project: its conftest loads the steps it wants
    project.import_modules()
    import importlib

    for name in ("harness.steps.library", *project.steps):
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(importlib.import_module(name), name)


def _settings(config: pytest.Config) -> DrillSettings:
    root = Path(config.rootpath)
    stack = config.getoption("--stack-file")
    run_dir = config.getoption("--run-dir")
    report = config.getoption("--drill-report")
    return DrillSettings(
        backend=config.getoption("--backend"),
        stack_file=Path(stack).resolve() if stack else root / "docker-compose.yml",
        run_root=Path(run_dir).resolve() if run_dir else root / "runs",
        report_dir=Path(report).resolve() if report else None,
        dry_run=bool(config.getoption("--dry-run")),
        allow_live=bool(config.getoption("--allow-live")),
        confirm_live=config.getoption("--confirm-live"),
        features=tuple(Path(f).resolve() for f in config.getoption("--drill-feature")),
    )


def _scenario_of(item: pytest.Item) -> Any:
    """The pytest-bdd scenario template behind a test item, or None for ordinary tests."""
    from harness.bdd import scenario_of_test

    obj = getattr(item, "obj", None)
    return scenario_of_test(obj) if obj is not None else None


def scenario_title(item: pytest.Item) -> str | None:
    """The scenario's name as the feature says it, Examples values filled in; None for ordinary tests."""
    template = _scenario_of(item)
    if template is None:
        return None
    callspec = getattr(item, "callspec", None)
    example = callspec.params.get("_pytest_bdd_example", {}) if callspec is not None else {}
    return str(template.render(example).name) if example else str(template.name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    worker = hasattr(config, "workerinput")
    for item in items:  # progress lines (also those of xdist workers) name the scenario as the feature does
        title = scenario_title(item)
        if title is not None:
            item.user_properties.append((SCENARIO_PROPERTY, title))
            if worker:
                item.user_properties.append((WORKER_PID_PROPERTY, os.getpid()))
    _keep_selected_features(config, items)
    durations = config.getoption("--drill-durations")
    if durations:
        workers = getattr(config, "workerinput", {}).get("workercount", 0)
        longest_first(items, load_durations(Path(durations)), workers=int(workers))


def load_durations(path: Path) -> dict[tuple[str, str], float]:
    """{(feature file, scenario name): seconds} from ``path``; empty when it cannot be read (only an ordering hint)."""
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        (str(feature), str(name)): float(seconds)
        for feature, scenarios in raw.items() if isinstance(scenarios, dict)
        for name, seconds in scenarios.items() if isinstance(seconds, int | float)
    }


def longest_first(items: list[pytest.Item], durations: dict[tuple[str, str], float], *, workers: int = 0) -> None:
    """Order scenarios longest first (by an earlier run's durations; unknown ones first, in feature order).

    Under ``drill run -n`` each idle worker takes the next scenario: starting the long ones first keeps one
    long scenario from starting last and holding the whole run up (longest-processing-time scheduling).
    xdist's ``load`` scheduling hands each of the ``workers`` a first chunk of two consecutive items, so the
    first ``2 * workers`` are paired: worker i gets the i-th longest with the i-th shortest of them, never
    the two longest together. Every worker computes the same order from the same file, as xdist requires.
    """
    def key(item: pytest.Item) -> float:
        scenario = _scenario_of(item)
        if scenario is None:
            return 0.0
        feature = Path(scenario.feature.filename).name
        known = durations.get((feature, scenario_title(item) or ""))
        return -(known if known is not None else float("inf"))

    items.sort(key=key)  # stable: equal keys keep the features' order
    head = 2 * workers
    if workers > 1 and len(items) >= head:
        first = items[:head]
        items[:head] = [item for i in range(workers) for item in (first[i], first[head - 1 - i])]


def _keep_selected_features(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {p for p in _settings(config).features}
    if not wanted:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        scenario = _scenario_of(item)
        path = Path(scenario.feature.filename).resolve() if scenario is not None else None
        (keep if path is not None and any(path == w or w in path.parents for w in wanted) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def drill_settings(pytestconfig: pytest.Config) -> DrillSettings:
    return _settings(pytestconfig)


@pytest.fixture
def drill_backend(request: pytest.FixtureRequest, drill_settings: DrillSettings) -> Iterator[Any]:
    """A freshly started stack for one scenario; always brought down afterwards."""
    from harness.drill import open_backend

    started = time.monotonic()
    with open_backend(drill_settings, request.node.name) as backend:
        request.node.stash[_STACK_UP] = time.monotonic() - started
        yield backend


@pytest.fixture
def drill(request: pytest.FixtureRequest, drill_settings: DrillSettings, drill_backend: Any) -> Iterator[Any]:
    """The scenario's drill: faults, waits, operator commands, timeline. Rolls back every fault at the end."""
    from harness.drill import Drill

    d = Drill(drill_backend, drill_settings, name=request.node.name)
    request.node.stash[_DRILL] = d
    try:
        yield d
    finally:
        d.close()


# --- journal: steps, verdicts, measurements --------------------------------------------------------


def _collection_index(node: pytest.Item) -> int:
    try:
        return node.session.items.index(node)
    except ValueError:
        return -1


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    tags = sorted(set(feature.tags) | set(scenario.tags))
    record = ScenarioRecord(
        nodeid=request.node.nodeid,
        feature=feature.name,
        feature_file=str(feature.rel_filename),
        scenario=scenario.name,
        line=scenario.line_number,
        tags=tags,
        index=_collection_index(request.node),
    )
    request.node.stash[_RECORD] = record
    journal = request.config.stash.get(_JOURNAL, None)
    if journal is not None:  # on disk as "running" at once: a killed run still says where it stopped
        journal.scenarios.append(record)
        journal.write()


def pytest_bdd_before_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any
) -> None:
    request.node.stash[_STEP_START] = time.monotonic()
    request.node.stash[_STEP] = step  # an interrupted run's journal names the step it stopped in
    drill = request.node.stash.get(_DRILL, None)
    if drill is not None and drill.ctx.safety is not None:
        drill.ctx.safety.check_halt(drill.backend.run_dir)  # `drill halt` stops a drill between steps


def _step_record(node: pytest.Item, step: Any, status: str, error: str | None = None) -> None:
    record = node.stash.get(_RECORD, None)
    if record is None:
        return
    started = node.stash.get(_STEP_START, time.monotonic())
    record.steps.append(
        StepRecord(step.keyword, step.name, step.line_number, status, round(time.monotonic() - started, 3), error)
    )


def pytest_bdd_after_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any, step_func_args: Any
) -> None:
    planned = request.config.getoption("--dry-run")  # a dry run only described the step
    _step_record(request.node, step, "planned" if planned else "passed")


def pytest_bdd_step_error(
    request: pytest.FixtureRequest,
    feature: Any,
    scenario: Any,
    step: Any,
    step_func: Any,
    step_func_args: Any,
    exception: Exception,
) -> None:
    _step_record(request.node, step, "failed", str(exception))


def pytest_bdd_step_func_lookup_error(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, exception: Exception
) -> None:
    _step_record(request.node, step, "undefined", f"no step definition matches: {step.keyword} {step.name}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    record = item.stash.get(_RECORD, None)
    if record is None:
        return report
    duration = round(report.duration, 3)
    if report.when == "call":
        record.duration_s = duration
        stack_up: float = item.stash.get(_STACK_UP, 0.0)
        record.stack_up_s = round(stack_up, 3)
    elif report.when == "teardown":
        record.teardown_s = duration
    if report.when == "call" or (report.when == "setup" and report.failed):
        record.status = "passed" if report.passed else ("skipped" if report.skipped else "failed")
        if record.status == "passed" and item.config.getoption("--dry-run"):
            record.status = "planned"  # a dry run touched nothing: nothing passed
        if report.skipped:  # the reason is the record's error: journal, report and junit say why
            record.error = skip_reason(report)
        if report.failed:
            record.error = _short_error(report)
            if _halted(call):  # `drill halt` stopped it: say so, never "timed out" or "failed"
                record.status = "halted"
                report.user_properties.append((HALTED_PROPERTY, record.error))  # for the console (and xdist)
    if report.when == "teardown":
        if report.failed and record.status == "passed":
            record.status = "error"
            record.error = _short_error(report)
        _finish(item, record)
    return report


def _halted(call: pytest.CallInfo[None]) -> bool:
    from harness.errors import DrillHalted

    exc = call.excinfo.value if call.excinfo is not None else None
    while exc is not None:  # pytest-bdd may wrap the step's error
        if isinstance(exc, DrillHalted):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def skip_reason(report: pytest.TestReport) -> str:
    """Why pytest skipped a test (``pytest.skip(reason)``: longrepr is ``(path, line, "Skipped: reason")``)."""
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _short_error(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr)[-2000:]


def _finish(item: pytest.Item, record: ScenarioRecord) -> None:
    done = {s.line for s in record.steps}
    scenario = _scenario_of(item)
    if scenario is not None:
        for step in scenario.steps:
            if step.line_number not in done:
                record.steps.append(StepRecord(step.keyword, step.name, step.line_number, "skipped"))
    drill = item.stash.get(_DRILL, None)
    if drill is not None:
        record.faults = drill.fault_records()
        record.measurements = [m.to_dict() for m in drill.measurements()]
        record.timeline = drill.timeline.to_dict()
    journal = item.config.stash.get(_JOURNAL, None)
    if journal is not None:
        if record not in journal.scenarios:
            journal.scenarios.append(record)
        journal.write()


@pytest.hookimpl(trylast=True)  # after pytest tore the fixtures down: every fault is rolled back by now
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    for item in session.items:
        record = item.stash.get(_RECORD, None)
        if record is not None and record.status == "running":
            _interrupted(item, record)
    journal = session.config.stash.get(_JOURNAL, None)
    if journal is not None:
        journal.finished = not interrupted
        journal.interrupted = interrupted
        journal.write()


def _interrupted(item: pytest.Item, record: ScenarioRecord) -> None:
    """A scenario the run stopped in (Ctrl-C, SIGTERM): the step it stopped in, its faults, its timeline."""
    step = item.stash.get(_STEP, None)
    if step is not None and step.line_number not in {s.line for s in record.steps}:
        _step_record(item, step, "interrupted", "the run was interrupted during this step")
    record.status = "interrupted"
    record.error = record.error or "interrupted: the run stopped during this scenario"
    _finish(item, record)

"""The run journal, parsed once into frozen objects every report is built from.

A report directory holds ``journal.json`` (a serial run, or the controller of an xdist run) and
``journal-<worker>.json`` (one per xdist worker). :func:`load_run` merges them into one
:class:`Run`; :func:`parse_journal` reads one journal document. Everything past this module reads
attributes, never journal dicts.

A journal whose run crashed half-way says ``"finished": false``, and its last scenario may still be
``"status": "running"``; an interrupted run (Ctrl-C, SIGTERM) marks the scenario it stopped in
``"interrupted"`` with the step it stopped in. :attr:`Run.stopped_at` says where either stopped.
A dry run's scenarios are ``"planned"``: nothing ran, so nothing passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError
from harness.journal import JOURNAL_FILE, JOURNAL_VERSION
from harness.step_meaning import ALERT_STEP, NO_RECOVERY, has_recovery
from harness.step_meaning import severity as derive_severity

QUARTERS = ("q1", "q2", "q3", "q4")
OK_STATUSES = ("passed", "skipped", "planned")
OPERATOR_STEP = re.compile(r"^the on-call\b")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "scenario"


@dataclass(frozen=True)
class Step:
    keyword: str
    text: str
    line: int
    status: str  # passed | failed | skipped | undefined | interrupted
    duration_s: float
    error: str | None

    @property
    def is_operator(self) -> bool:
        """A runbook step the on-call performs ("the on-call runs ...", "the on-call restarts ...")."""
        return bool(OPERATOR_STEP.match(self.text))


@dataclass(frozen=True)
class Event:
    kind: str
    offset_s: float  # seconds from the timeline's origin
    wall: str
    label: str
    source: str
    details: Mapping[str, object]


@dataclass(frozen=True)
class Metric:
    name: str
    value_s: float | None
    target_s: float | None
    met: bool | None
    verdict: str


@dataclass(frozen=True)
class FaultInfo:
    kind: str
    fault_id: str
    description: str
    state: str
    params: Mapping[str, object]


@dataclass(frozen=True)
class ExpectedAlert:
    severity: str
    alert: str
    within_s: float | None
    step: Step


@dataclass(frozen=True)
class Scenario:
    nodeid: str
    feature: str
    feature_file: str
    name: str
    line: int
    tags: tuple[str, ...]
    status: str  # running | passed | failed | skipped | error | planned | interrupted
    duration_s: float
    stack_up_s: float
    teardown_s: float
    steps: tuple[Step, ...]
    faults: tuple[FaultInfo, ...]
    metrics: tuple[Metric, ...]
    events: tuple[Event, ...]
    timeline_started_at: str | None
    error: str | None
    roles: Mapping[str, str] = field(default_factory=dict)
    lessons: str | None = None
    index: int = -1  # position in the run's collection (every xdist worker collects the same list)

    @property
    def severity(self) -> str:
        """What the scenario asserts (its first alert's severity), falling back to its tag."""
        return derive_severity(self.tags, (s.text for s in self.steps))

    @property
    def has_recovery(self) -> bool:
        return has_recovery(s.text for s in self.steps)

    @property
    def rto_summary(self) -> tuple[str, str]:
        """(RTO vs target, its verdict) for every table; a drill without recovery says why it has no RTO."""
        rto = self.rto
        if not self.has_recovery and (rto is None or rto.value_s is None):
            return f"n/a: {NO_RECOVERY}", "no recovery"
        if self.interrupted and (rto is None or rto.value_s is None):  # stopped before it could recover
            return "- (interrupted)", "not measured"
        if self.status == "planned":  # a dry run measured nothing
            target_s = rto.target_s if rto is not None else None
            return f"planned ({'no target' if target_s is None else f'target {target_s:g}s'})", "planned"
        if rto is None:
            return "-", "not measured"
        value = "-" if rto.value_s is None else f"{rto.value_s:.1f}s"
        if rto.target_s is None:
            return f"{value} (no target)", "no target" if rto.value_s is not None else "not measured"
        target = f"target {rto.target_s:g}s"
        if rto.value_s is None:
            return f"not recovered ({target})", "missed"
        return f"{value} ({target})", "met" if rto.met else "missed"

    @property
    def quarter(self) -> str:
        return next((t.upper() for t in sorted(self.tags) if t in QUARTERS), "")

    @property
    def slug(self) -> str:
        return slug(self.name)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def mttd(self) -> Metric | None:
        return self.metric("MTTD")

    @property
    def rto(self) -> Metric | None:
        return self.metric("RTO")

    @property
    def interrupted(self) -> bool:
        """The run stopped inside this scenario: interrupted (Ctrl-C), or killed while it was running."""
        return self.status in ("running", "interrupted")

    @property
    def verdict(self) -> str:
        return "interrupted" if self.interrupted else self.status

    @property
    def failing_step(self) -> Step | None:
        return next((s for s in self.steps if s.status in ("failed", "undefined")), None)

    @property
    def last_step(self) -> Step | None:
        done = [s for s in self.steps if s.status != "skipped"]
        return done[-1] if done else None

    @property
    def stopped_where(self) -> str:
        """Where an interrupted scenario stopped, in the same words in every report."""
        step = self.last_step
        if step is None:
            return "before its first step"
        when = "during" if step.status == "interrupted" else "after"
        return f"{when} step {step.keyword} {step.text} (line {step.line})"

    @property
    def fault_origin(self) -> float | None:
        """Offset of the first injected fault: time zero of the incident."""
        return next((e.offset_s for e in self.events if e.kind == "fault_injected"), None)

    def since_fault(self, event: Event) -> float:
        return event.offset_s - (self.fault_origin or 0.0)

    def events_of(self, *kinds: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind in kinds)

    @property
    def expected_alerts(self) -> tuple[ExpectedAlert, ...]:
        out = []
        for step in self.steps:
            m = ALERT_STEP.search(step.text)
            if m:
                within = float(m.group("within")) if m.group("within") else None
                out.append(ExpectedAlert(m.group("severity").upper(), m.group("alert"), within, step))
        return tuple(out)

    @property
    def operator_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.is_operator)

    @property
    def notes(self) -> tuple[Event, ...]:
        """Notes people typed (GameDay) or the harness wrote (held conditions, preconditions)."""
        return self.events_of("note")

    @property
    def people_notes(self) -> tuple[Event, ...]:
        """Notes typed by people during a GameDay (they carry ``details.by``)."""
        return tuple(e for e in self.notes if e.details.get("by"))


@dataclass(frozen=True)
class Run:
    report_dir: Path
    sources: tuple[Path, ...]
    version: int
    backend: str
    stack_file: str
    revision: str | None
    harness_version: str | None
    command: str | None
    started_at: str
    finished: bool
    scenarios: tuple[Scenario, ...]
    mode: str = "run"  # run | gameday

    @property
    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sc in self.scenarios:
            out[sc.verdict] = out.get(sc.verdict, 0) + 1
        return out

    @property
    def passed(self) -> bool:
        return self.finished and all(s.status in OK_STATUSES for s in self.scenarios)

    @property
    def stopped_at(self) -> str | None:
        """Where a run that did not finish stopped; None for a finished run."""
        if self.finished:
            return None
        running = [s for s in self.scenarios if s.interrupted]
        if running:
            sc = running[-1]
            return f"the run stopped during scenario '{sc.name}' ({sc.feature_file}:{sc.line}) {sc.stopped_where}"
        if self.scenarios:
            last = self.scenarios[-1]
            return (f"the run stopped after {len(self.scenarios)} scenario(s); the last one recorded was "
                    f"'{last.name}' ({last.feature_file}:{last.line}); later scenarios never reported")
        return "the run stopped before any scenario finished"


# --- parsing --------------------------------------------------------------------------------------


def _bad(where: str, what: str, value: object) -> InputError:
    return InputError(
        f"{where}: expected {what}, observed {value!r:.80}",
        hint="the file is not a drill journal written by this harness; regenerate it with `drill run --report DIR`",
    )


def _map(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _bad(where, "an object", value)
    return value


def _list(value: object, where: str) -> Sequence[object]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(where, "a list", value)
    return value


def _str(m: Mapping[str, object], key: str, where: str, default: str | None = None) -> str:
    value = m.get(key, default)
    if not isinstance(value, str):
        raise _bad(f"{where}.{key}", "a string", value)
    return value


def _opt_str(m: Mapping[str, object], key: str) -> str | None:
    value = m.get(key)
    return None if value is None else str(value)


def _num(m: Mapping[str, object], key: str, where: str, default: float = 0.0) -> float:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{where}.{key}", "a number", value)
    return float(value)


def _opt_num(m: Mapping[str, object], key: str, where: str) -> float | None:
    return None if m.get(key) is None else _num(m, key, where)


def _step(raw: object, where: str) -> Step:
    m = _map(raw, where)
    return Step(
        keyword=_str(m, "keyword", where).strip(),
        text=_str(m, "text", where),
        line=int(_num(m, "line", where)),
        status=_str(m, "status", where),
        duration_s=_num(m, "duration_s", where),
        error=_opt_str(m, "error"),
    )


def _event(raw: object, where: str) -> Event:
    m = _map(raw, where)
    return Event(
        kind=_str(m, "kind", where),
        offset_s=_num(m, "offset_s", where),
        wall=_str(m, "wall", where, ""),
        label=_str(m, "label", where, ""),
        source=_str(m, "source", where, "harness"),
        details=dict(_map(m.get("details") or {}, f"{where}.details")),
    )


def _metric(raw: object, where: str) -> Metric:
    m = _map(raw, where)
    met = m.get("met")
    return Metric(
        name=_str(m, "name", where),
        value_s=_opt_num(m, "value_s", where),
        target_s=_opt_num(m, "target_s", where),
        met=met if isinstance(met, bool) else None,
        verdict=_str(m, "verdict", where, ""),
    )


def _fault(raw: object, where: str) -> FaultInfo:
    m = _map(raw, where)
    return FaultInfo(
        kind=_str(m, "kind", where, "fault"),
        fault_id=_str(m, "fault_id", where, ""),
        description=_str(m, "description", where, ""),
        state=_str(m, "state", where, ""),
        params=dict(_map(m.get("params") or {}, f"{where}.params")),
    )


def _normalised_steps(steps: list[Step]) -> tuple[Step, ...]:
    """Steps after the first failure never ran: they are skipped, whatever a writer said."""
    out: list[Step] = []
    failed = False
    for s in sorted(steps, key=lambda s: s.line):
        if failed and s.status not in ("skipped",):
            s = Step(s.keyword, s.text, s.line, "skipped", 0.0, None)
        failed = failed or s.status in ("failed", "undefined", "interrupted")
        out.append(s)
    return tuple(out)


def _scenario(raw: object, where: str, *, normalise: bool = True) -> Scenario:
    m = _map(raw, where)
    timeline = _map(m.get("timeline") or {}, f"{where}.timeline")
    steps = [_step(s, f"{where}.steps[{i}]") for i, s in enumerate(_list(m.get("steps"), f"{where}.steps"))]
    events = [_event(e, f"{where}.timeline.events[{i}]")
              for i, e in enumerate(_list(timeline.get("events"), f"{where}.timeline.events"))]
    metrics_raw = m.get("measurements") or timeline.get("measurements")
    roles = _map(m.get("roles") or {}, f"{where}.roles")
    return Scenario(
        nodeid=_str(m, "nodeid", where, ""),
        feature=_str(m, "feature", where),
        feature_file=_str(m, "feature_file", where, ""),
        name=_str(m, "scenario", where),
        line=int(_num(m, "line", where)),
        tags=tuple(str(t) for t in _list(m.get("tags"), f"{where}.tags")),
        status=_str(m, "status", where, "running"),
        duration_s=_num(m, "duration_s", where),
        stack_up_s=_num(m, "stack_up_s", where),
        teardown_s=_num(m, "teardown_s", where),
        steps=_normalised_steps(steps) if normalise else tuple(steps),
        faults=tuple(_fault(f, f"{where}.faults[{i}]")
                     for i, f in enumerate(_list(m.get("faults"), f"{where}.faults"))),
        metrics=tuple(_metric(x, f"{where}.measurements[{i}]")
                      for i, x in enumerate(_list(metrics_raw, f"{where}.measurements"))),
        events=tuple(sorted(events, key=lambda e: e.offset_s)),
        timeline_started_at=_opt_str(timeline, "started_at"),
        error=_opt_str(m, "error"),
        roles={str(k): str(v) for k, v in roles.items()},
        lessons=_opt_str(m, "lessons"),
        index=int(_num(m, "index", where, -1)),
    )


def parse_journal(data: object, source: Path) -> Run:
    """One journal document (already JSON-decoded) as a :class:`Run`; InputError naming the bad field."""
    where = source.name
    m = _map(data, where)
    if m.get("version") != JOURNAL_VERSION:
        raise InputError(
            f"{source}: expected a drill journal of version {JOURNAL_VERSION}, observed version {m.get('version')!r}",
            hint="regenerate it with this harness (`drill run --report DIR`)",
        )
    scenarios = _list(m.get("scenarios"), f"{where}.scenarios")
    mode = _str(m, "mode", where, "run")
    # a pytest-bdd scenario stops at its first failed step; a GameDay goes on (people retry)
    normalise = mode != "gameday"
    return Run(
        report_dir=source.parent,
        sources=(source,),
        version=JOURNAL_VERSION,
        backend=_str(m, "backend", where, "?"),
        stack_file=_str(m, "stack_file", where, "?"),
        revision=_opt_str(m, "revision"),
        harness_version=_opt_str(m, "harness_version"),
        command=_opt_str(m, "command"),
        started_at=_str(m, "started_at", where, ""),
        finished=bool(m.get("finished", False)),
        scenarios=tuple(_scenario(s, f"{where}.scenarios[{i}]", normalise=normalise) for i, s in enumerate(scenarios)),
        mode=mode,
    )


def read_journal(path: Path) -> Run:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no journal at {path}", hint="run `drill run --report DIR` first") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: expected JSON, observed a parse error: {exc.msg}",
            hint="the journal was cut off or edited by hand; re-run the drill to get a fresh one",
        ) from exc
    return parse_journal(data, path)


def journal_files(report_dir: Path) -> list[Path]:
    """``journal.json`` first (serial run or xdist controller), then every ``journal-<worker>.json``."""
    main = report_dir / JOURNAL_FILE
    workers = sorted(report_dir.glob("journal-*.json"))
    return ([main] if main.exists() else []) + workers


def merge(runs: Sequence[Run]) -> Run:
    """Several journals of one run (xdist workers) as one: metadata of the first, every scenario once."""
    if not runs:
        raise InputError("nothing to merge: no journal given")
    head = runs[0]
    seen: dict[str, Scenario] = {}
    order: list[str] = []
    for run in runs:
        for i, sc in enumerate(run.scenarios):
            key = sc.nodeid or f"{run.sources[0].name}#{i}"
            if key not in seen:
                order.append(key)
            seen[key] = sc  # a later record of the same test (a rerun) wins
    started = min((r.started_at for r in runs if r.started_at), default=head.started_at)
    if len(runs) > 1:  # xdist workers finish in any order: list the scenarios as the features do
        order.sort(key=lambda k: (seen[k].index, seen[k].feature_file, seen[k].line))
    return Run(
        report_dir=head.report_dir,
        sources=tuple(p for r in runs for p in r.sources),
        version=head.version,
        backend=head.backend,
        stack_file=head.stack_file,
        revision=next((r.revision for r in runs if r.revision), None),
        harness_version=next((r.harness_version for r in runs if r.harness_version), None),
        command=head.command,
        started_at=started,
        finished=all(r.finished for r in runs),
        scenarios=tuple(seen[k] for k in order),
        mode=head.mode,
    )


def load_run(report_dir: Path) -> Run:
    """Every journal of a report directory, merged (xdist: ``journal-gw*.json``)."""
    files = journal_files(report_dir)
    if not files:
        raise InputError(
            f"expected {report_dir / JOURNAL_FILE} (or journal-<worker>.json), observed no journal in {report_dir}",
            hint="pass the --report directory of a `drill run` or `drill gameday`",
        )
    return merge([read_journal(p) for p in files])


def unique_slugs(scenarios: Sequence[Scenario]) -> list[str]:
    """One file-name-safe slug per scenario, unique within the run (``-2``, ``-3`` on a clash)."""
    seen: dict[str, int] = {}
    out = []
    for sc in scenarios:
        base = sc.slug
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out

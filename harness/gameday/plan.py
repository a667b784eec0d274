"""A GameDay's plan, derived from the drill project's scenario tagged ``@q1``..``@q4`` (never from a table).

``load_plan("Q2")`` finds the scenarios tagged ``@q2`` in the project's features (or in the
``--feature`` file), takes the one also tagged ``@gameday`` if any (else the first), renders a
Scenario Outline with its first Examples row, and sorts the scenario's own steps, as pytest-bdd's
parser reads them, into the phases of a GameDay:

* **preconditions**: the steps before the fault (``Given the trading stack is running ...``);
* **fault**: the first When step whose step definition injects a fault (``drill.inject``): the
  coordinator's cue;
* **detections**: the Then steps with a deadline (``... within N seconds``) right after the fault,
  watched concurrently; each one's deadline counts from the fault and adds the deadlines of the
  detections before it, the latest moment ``drill run`` (one step after the other) accepts it;
* **checks**: the other Then steps right after the fault (``no new order is sent for 3 seconds``);
* **response**: what the on-call does next (runbook steps, the fault's end such as ``the broker link
  is restored``): people play it, ``--auto`` runs it;
* **recovery**: the first later Then step with a deadline whose definition records a recovery
  (``trading resumes within an RTO of 60 seconds``): what recovery is measured on;
* **follow-up**: the steps after it (``--auto`` runs them once recovered).

The RTO target is the scenario's own ``RTO of N seconds`` (``--rto`` overrides it); the runbook
sections shown to the on-call are those of its ``follows runbook step N of "<section>"`` steps.
Every step must match exactly one step definition (the shared library plus the project's own), so
a GameDay never starts a stack it could not drive. Errors name the tag, the file and the line.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

from harness.catalog import DEADLINE, StepDef, feature_files, load_step_library, parse_feature
from harness.errors import InputError
from harness.project import DrillProject, current_project

CHOOSE_TAG = "gameday"
RTO = re.compile(r"\bRTO of (?P<value>\d+(?:\.\d+)?) (?P<unit>seconds?|minutes?)\b")
RUNBOOK_STEP = re.compile(r'runbook step (?P<number>\d+) of "(?P<section>[^"]+)"')
FAULT_END_WORDS = re.compile(r"\b(restored|repaired|restarts?|thawed)\b")
# what the step function's code refers to (pytest-bdd keeps the undecorated function)
INJECTS = frozenset({"inject"})
RESTORES = frozenset({"restore"})
RECOVERS = frozenset({"RECOVERED", "recovered"})  # EventKind.RECOVERED, drill.recovered(...)
STEP_ARGUMENTS = frozenset({"drill", "datatable", "docstring"})


class GameDayPlanError(InputError):
    """The scenario a GameDay needs is missing or cannot be played (exit 2)."""


@dataclass(frozen=True)
class PlanStep:
    keyword: str  # as written: Given, When, Then, And, But
    type: str  # given | when | then (And/But take the type before them)
    text: str  # rendered (an outline's values filled in)
    line: int
    definition: StepDef = field(compare=False, repr=False)

    @property
    def deadline_s(self) -> float | None:
        """``within N seconds`` (or minutes / ms) of the step's text, in seconds; None without one."""
        m = DEADLINE.search(self.text)
        if m is None:
            return None
        value = float(m.group("value"))
        unit = m.group("unit")
        return value * 60 if unit.startswith("minute") else value / 1000 if unit == "ms" else value

    @property
    def runbook_section(self) -> str | None:
        m = RUNBOOK_STEP.search(self.text)
        return m.group("section") if m else None

    def refers_to(self, names: frozenset[str]) -> bool:
        """Whether the step function's code (nested functions included) names one of ``names``, or a
        name containing one (``drill.inject(...)``, a team's ``inject_outage(drill)``)."""
        code = getattr(self.definition.context.step_func, "__code__", None)
        return code is not None and any(want in name for name in _names(code) for want in names)

    def __str__(self) -> str:
        return f"{self.keyword} {self.text}"


@dataclass(frozen=True)
class GameDayPlan:
    quarter: str  # Q1..Q4
    feature: str
    feature_file: Path
    scenario: str
    line: int
    tags: tuple[str, ...]
    example: Mapping[str, str]  # the Examples row used for an outline ({} otherwise)
    candidates: tuple[str, ...]  # every scenario carrying the tag, as "file:line name"
    preconditions: tuple[PlanStep, ...]
    fault: PlanStep
    detections: tuple[PlanStep, ...]
    checks: tuple[PlanStep, ...]
    response: tuple[PlanStep, ...]
    fault_end: PlanStep | None
    recovery: PlanStep
    follow_up: tuple[PlanStep, ...]
    rto_s: float | None  # the scenario's "RTO of N seconds"
    rto_line: int | None  # the line of the step that states it
    sections: tuple[str, ...]  # runbook sections its steps follow, in order

    @property
    def where(self) -> str:
        return f"{self.feature_file}:{self.line}"

    def detection_deadlines(self) -> tuple[float, ...]:
        """Each detection's deadline counted from the fault: its own plus those of the ones before it."""
        total = 0.0
        out: list[float] = []
        for step in self.detections:
            total += step.deadline_s or 0.0
            out.append(total)
        return tuple(out)

    def choice(self) -> str:
        """How the scenario was chosen, in a sentence for the console."""
        tag = self.quarter.lower()
        if len(self.candidates) == 1:
            return f"the only scenario tagged @{tag}: {self.where}"
        how = (f"tagged @{CHOOSE_TAG}" if CHOOSE_TAG in self.tags
               else f"the first; tag another @{CHOOSE_TAG} to choose it")
        return f"{self.where} ({how}) of {len(self.candidates)} scenarios tagged @{tag}"


def quarter_tag(quarter: str) -> str:
    q = quarter.strip().upper()
    if re.fullmatch(r"Q[1-4]", q) is None:
        raise GameDayPlanError(f"expected a quarter Q1..Q4, observed {quarter!r}", hint="drill gameday Q2")
    return q.lower()


def load_plan(
    quarter: str,
    *,
    feature: Path | None = None,
    project: DrillProject | None = None,
    library: Sequence[StepDef] | None = None,
) -> GameDayPlan:
    """The GameDay plan of ``quarter`` from the project's features (or ``feature``)."""
    tag = quarter_tag(quarter)
    project = project or current_project()
    where = feature if feature is not None else project.features
    if feature is None and not where.is_dir():
        raise GameDayPlanError(f"no features directory at {where}", hint="run `drill init`, or pass --feature PATH")
    found: list[tuple[Path, Any, Any]] = []  # (path, feature, scenario template)
    for path in feature_files([where]):
        parsed = parse_feature(path)
        for template in parsed.scenarios.values():
            if tag in set(parsed.tags) | set(template.tags):
                found.append((path, parsed, template))
    if not found:
        raise GameDayPlanError(
            f"no scenario tagged @{tag} in {where}",
            hint=f"tag the drill for {tag.upper()} with @{tag} (on its Feature or Scenario line), "
            "or pass --feature PATH",
        )
    chosen = next(
        (f for f in found if CHOOSE_TAG in set(f[1].tags) | set(f[2].tags)), found[0]
    )
    defs = list(library) if library is not None else load_step_library(project)
    candidates = tuple(f"{p}:{t.line_number} {t.name}" for p, _, t in found)
    return derive_plan(tag.upper(), *chosen, defs, candidates)


def derive_plan(
    quarter: str, path: Path, feature: Any, template: Any, defs: Sequence[StepDef], candidates: tuple[str, ...]
) -> GameDayPlan:
    """Sort one (pytest-bdd) scenario template's steps into a GameDay plan."""
    example: dict[str, str] = {}
    for examples in template.examples or []:
        for row in examples.as_contexts():
            example = dict(row)
            break
        if example:
            break
    scenario = template.render(example)
    where = f"{path}:{template.line_number}"
    steps = [_bind(path, s, defs) for s in scenario.steps]
    tags = tuple(sorted(set(feature.tags) | set(template.tags)))

    def fail(message: str, hint: str) -> GameDayPlanError:
        return GameDayPlanError(f'scenario "{scenario.name}" {message}', location=where, hint=hint)

    fault_at = next((i for i, s in enumerate(steps) if s.type == "when" and s.refers_to(INJECTS)), None)
    if fault_at is None:
        raise fail("has no When step that injects a fault (its definition calls drill.inject)",
                   "a GameDay needs a fault on the coordinator's cue, e.g. 'When the broker link goes down'")
    incident_end = fault_at + 1
    while incident_end < len(steps) and steps[incident_end].type == "then":
        incident_end += 1
    incident = steps[fault_at + 1:incident_end]
    detections = tuple(s for s in incident if s.deadline_s is not None and RTO.search(s.text) is None)
    if not detections:
        raise fail("has no detection after its fault (a Then step with 'within N seconds' right after it)",
                   "add e.g. 'Then a P0 alert \"...\" fires within 30 seconds' after the fault")
    rest = steps[incident_end:]
    recovery_at = next((i for i, s in enumerate(rest) if _records_recovery(s)), None)
    if recovery_at is None:
        raise fail("has no step that records the recovery after the incident (a Then step with a deadline, "
                   "e.g. 'Then every service is healthy within 30 seconds')",
                   "add the step that shows the stack has recovered; RTO is measured on it")
    response = tuple(rest[:recovery_at])
    fault_end = next((s for s in response if s.type == "when" and (s.refers_to(RESTORES)
                                                                  or FAULT_END_WORDS.search(s.text))), None)
    follow_up = tuple(s for s in rest[recovery_at + 1:] if not _only_rto(s))
    rto_step = next((s for s in steps if RTO.search(s.text)), None)
    rto = RTO.search(rto_step.text) if rto_step is not None else None
    rto_s = None if rto is None else float(rto.group("value")) * (60 if rto.group("unit").startswith("minute") else 1)
    sections = tuple(dict.fromkeys(s.runbook_section for s in steps if s.runbook_section))
    return GameDayPlan(
        quarter=quarter, feature=feature.name, feature_file=path, scenario=scenario.name,
        line=template.line_number, tags=tags, example=example, candidates=candidates,
        preconditions=tuple(steps[:fault_at]), fault=steps[fault_at], detections=detections,
        checks=tuple(s for s in incident if all(s is not d for d in detections)), response=response,
        fault_end=fault_end,
        recovery=rest[recovery_at], follow_up=follow_up, rto_s=rto_s,
        rto_line=rto_step.line if rto_step is not None else None, sections=sections,
    )


def _names(code: CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found |= _names(const)
    return found


def _records_recovery(step: PlanStep) -> bool:
    if step.type != "then" or step.deadline_s is None:
        return False
    return step.refers_to(RECOVERS) or bool(RTO.search(step.text))


def _only_rto(step: PlanStep) -> bool:
    """A step that only judges the RTO ('the recovery meets an RTO of 60 seconds'): GameDay judges it itself."""
    return bool(RTO.search(step.text)) and step.deadline_s is None


def _bind(path: Path, step: Any, defs: Sequence[StepDef]) -> PlanStep:
    where = f"{path}:{step.line_number}"
    matches = [d for d in defs if d.type in (step.type, "step") and d.context.parser.is_matching(step.name)]
    if not matches:
        raise GameDayPlanError(f"undefined step: {step.keyword} {step.name}", location=where,
                               hint="`drill steps` lists the step library; `drill lint` checks every feature")
    if len(matches) > 1:
        raise GameDayPlanError(f"ambiguous step '{step.name}' matches {len(matches)} definitions: "
                               + ", ".join(d.where for d in matches), location=where)
    definition = matches[0]
    parsed = definition.context.parser.parse_arguments(step.name) or {}
    params = inspect.signature(definition.context.step_func).parameters
    needs = [n for n, p in params.items() if n not in parsed and n not in STEP_ARGUMENTS
             and p.default is inspect.Parameter.empty
             and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if needs:
        raise GameDayPlanError(
            f"step '{step.name}' ({definition.where}) needs the pytest fixture(s) {', '.join(needs)}, "
            "which a GameDay cannot provide", location=where,
            hint="a GameDay step takes the drill object and its parsed values only; pass state through "
            "drill.remembered",
        )
    return PlanStep(step.keyword, step.type, step.name, step.line_number, definition)

"""The runbook's drill checklist, filled from what was measured; the rest is left for people.

Runbook, "Testing This Runbook", Drill Checklist:

* All team members know their roles: people (GameDay records who held which role).
* Runbook steps are clear and actionable: measured: every on-call step of the drill succeeded.
* RTO (Recovery Time Objective) is met: measured from the timeline.
* Alerts fired with the right severity: measured: each expected alert fired with its severity.
* Lessons learned documented: people (GameDay asks for them at the end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.model import Scenario

MET, MISSED, NOT_MEASURED, PEOPLE = "met", "missed", "not measured", "for people"


@dataclass(frozen=True)
class Item:
    title: str
    state: str  # met | missed | not measured | for people
    evidence: str

    @property
    def mark(self) -> str:
        return {MET: "[x]", MISSED: "[ ] MISSED:"}.get(self.state, "[ ]")


def roles_item(sc: Scenario) -> Item:
    title = "All team members know their roles"
    if sc.roles:
        who = ", ".join(f"{role}: {name}" for role, name in sc.roles.items())
        return Item(title, PEOPLE, f"roles recorded ({who}); confirm in the debrief that each person knew theirs")
    return Item(title, PEOPLE, "cannot be measured by the harness: confirm in the debrief (owner, coordinator, "
                               "on-call, observer, reporter)")


def runbook_item(sc: Scenario) -> Item:
    title = "Runbook steps are clear and actionable"
    steps = sc.operator_steps
    if not steps:
        return Item(title, NOT_MEASURED, "this drill has no on-call step")
    failed = [s for s in steps if s.status in ("failed", "undefined")]
    if failed:
        s = failed[0]
        why = (s.error or "").strip()[:300]
        return Item(title, MISSED, f"step failed: {s.keyword} {s.text} (line {s.line}): {why}")
    skipped = [s for s in steps if s.status == "skipped"]
    ran = [s for s in steps if s.status == "passed"]
    if skipped:
        return Item(title, NOT_MEASURED, f"{len(ran)} of {len(steps)} on-call step(s) succeeded; "
                                         f"{len(skipped)} never ran (an earlier step failed or the run stopped)")
    exits = [e for e in sc.events_of("step_ended") if "exit_code" in e.details]
    cmds = "; ".join(f"`{e.label}` exit {e.details['exit_code']}" for e in exits)
    return Item(title, MET, f"every on-call step ({len(ran)}) succeeded" + (f": {cmds}" if cmds else ""))


def rto_item(sc: Scenario) -> Item:
    title = "RTO (Recovery Time Objective) is met"
    rto = sc.rto
    if rto is None or rto.target_s is None:
        value = "" if rto is None or rto.value_s is None else f" (recovered after {rto.value_s:.1f}s)"
        return Item(title, NOT_MEASURED, f"this drill has no RTO target{value}")
    if rto.value_s is None:
        return Item(title, MISSED, f"never recovered (target {rto.target_s:g}s)")
    state = MET if rto.met else MISSED
    return Item(title, state, f"recovered after {rto.value_s:.1f}s, target {rto.target_s:g}s")


def alerts_item(sc: Scenario) -> Item:
    title = "Alerts fired with the right severity"
    expected = sc.expected_alerts
    if not expected:
        fired = sc.events_of("alert_fired")
        if fired:
            return Item(title, NOT_MEASURED, "no expected alert; fired: " + ", ".join(e.label for e in fired))
        return Item(title, NOT_MEASURED, "this drill expects no alert")
    parts, state = [], MET
    for a in expected:
        if a.step.status == "passed":
            parts.append(f"{a.severity} {a.alert}: fired")
        elif a.step.status == "skipped":
            parts.append(f"{a.severity} {a.alert}: not checked (step never ran)")
            state = NOT_MEASURED if state == MET else state
        else:
            lines = (a.step.error or "").strip().splitlines()
            parts.append(f"{a.severity} {a.alert}: MISSED ({lines[0][:200] if lines else 'failed'})")
            state = MISSED
    return Item(title, state, "; ".join(parts))


def lessons_item(sc: Scenario) -> Item:
    title = "Lessons learned documented"
    if sc.lessons:
        return Item(title, PEOPLE, f"noted at the end of the drill: {sc.lessons}; complete the postmortem")
    return Item(title, PEOPLE, "write them into the postmortem draft (postmortems/<scenario>.md)")


def scenario_checklist(sc: Scenario) -> tuple[Item, ...]:
    return (roles_item(sc), runbook_item(sc), rto_item(sc), alerts_item(sc), lessons_item(sc))


def run_checklist(scenarios: Sequence[Scenario]) -> tuple[Item, ...]:
    """One checklist for the whole run: an item is met only when every scenario that measured it met it."""
    if not scenarios:
        return ()
    per = [scenario_checklist(sc) for sc in scenarios]
    out = []
    for i, first in enumerate(per[0]):
        items = [p[i] for p in per]
        states = {it.state for it in items}
        if first.state == PEOPLE:
            evidence = first.evidence if len(items) == 1 else "for people: confirm in the debrief"
            out.append(Item(first.title, PEOPLE, evidence))
            continue
        measured = [(sc, it) for sc, it in zip(scenarios, items, strict=True) if it.state in (MET, MISSED)]
        missed = [(sc, it) for sc, it in measured if it.state == MISSED]
        if missed:
            out.append(Item(first.title, MISSED, "; ".join(f"{sc.name}: {it.evidence}" for sc, it in missed)[:600]))
        elif measured:
            out.append(Item(first.title, MET, f"met in all {len(measured)} scenario(s) that measure it"))
        else:
            out.append(Item(first.title, NOT_MEASURED, "no scenario measured it" if NOT_MEASURED in states else ""))
    return tuple(out)

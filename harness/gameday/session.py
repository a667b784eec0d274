"""GameDay: the quarterly drill with people in the loop (``drill gameday Q2``).

The drill is the project's own scenario tagged ``@q2`` (:mod:`harness.gameday.plan`), played
through its real step functions (:mod:`harness.gameday.play`). The harness plays the environment,
people play themselves:

1. it asks who holds each role (owner, coordinator, on-call, observer, reporter);
2. it starts a fresh stack (same backends and probes as ``drill run``) and runs the scenario's
   preconditions (its Given steps);
3. on the coordinator's cue (Enter) it runs the scenario's fault step;
4. it watches the scenario's detections concurrently (alert fired, log shows, ...) and prints each
   as it happens (``detected: ... at +3.4s``), paging the on-call with the runbook sections the
   scenario follows when the first one fires; then it runs the scenario's other checks;
5. meanwhile people type into the console: notes (stamped onto the timeline), ``restore`` (the
   scenario's fault-end step, e.g. the network is back), ``run <command>`` (an operator command),
   ``follow N`` (step N of the paged runbook section, as written), ``abort`` (revert every fault
   now; Ctrl-C and SIGTERM do the same);
6. it watches the scenario's recovery step and ends the drill with the RTO verdict, asks for lessons
   learned, and writes the same report as ``drill run`` (journal, junit, cucumber, HTML, postmortem).

``--auto``: the executor plays the on-call: once the incident is detected it runs the scenario's
response steps (runbook steps, the fault's end) and, once recovered, the steps after the recovery,
exactly as ``drill run`` would; people can still type notes or abort.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.clock import EventKind
from harness.drill import open_backend
from harness.errors import DrillError
from harness.gameday.console import LineReader
from harness.gameday.plan import GameDayPlan, GameDayPlanError, PlanStep
from harness.gameday.play import Cancelled, GameDayDrill, Seen, call_step
from harness.journal import JOURNAL_FILE, Journal, ScenarioRecord, StepRecord, git_revision
from harness.plugin import DrillSettings
from harness.project import current_project
from harness.report.runbook_text import section_text
from harness.runbook.executor import LAST_STEP_KEY, StepRun, follow_step

ROLES = ("owner", "coordinator", "on-call", "observer", "reporter")
FOLLOW = re.compile(r'^(?P<number>\d+)(?:\s+of\s+"?(?P<section>[^"]+?)"?)?$')
OUTPUT_LINES = 8


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def join_started(threads: list[threading.Thread], *, timeout_s: float) -> None:
    """Join every watcher that started. A signal (SIGTERM, Ctrl-C) may land between a watcher's registration
    and its start, or inside ``Thread.start()`` itself; joining that one would raise and skip the rollback
    that follows."""
    for thread in threads:
        try:
            thread.join(timeout=timeout_s)
        except RuntimeError:  # "cannot join thread before it is started": the signal came first
            continue


class Aborted(Exception):  # noqa: N818 - the coordinator's decision, not an error
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """How one scenario step went when the GameDay played it."""

    ok: bool
    error: str | None
    seen: tuple[Seen, ...]
    took_s: float
    cancelled: bool = False


@dataclass
class Options:
    plan: GameDayPlan
    auto: bool
    stack_file: Path
    backend: str
    report_dir: Path
    runbook: Path | None
    rto_s: float | None  # --rto; None = the scenario's own
    roles: dict[str, str] = field(default_factory=dict)
    max_s: float = 900.0
    poll_s: float = 0.5
    interrupted: bool = False

    @property
    def quarter(self) -> str:
        return self.plan.quarter


def rto_target(plan: GameDayPlan, override: float | None) -> float:
    """``--rto`` when given, else the scenario's own ``RTO of N seconds``; neither is an input error."""
    if override is not None:
        return override
    if plan.rto_s is None:
        raise GameDayPlanError(
            f'scenario "{plan.scenario}" states no RTO target', location=plan.where,
            hint="add a step such as 'And the recovery meets an RTO of 60 seconds', or pass --rto SECONDS",
        )
    return plan.rto_s


class GameDay:
    def __init__(self, options: Options, out: TextIO, reader: LineReader) -> None:
        self.o = options
        self.plan = options.plan
        self.out = out
        self.reader = reader
        self.rto_s = rto_target(self.plan, options.rto_s)
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.recovered = threading.Event()
        self.incident_done = threading.Event()
        self.t0: float | None = None
        self.seen: dict[str, float] = {}  # detection text -> seconds after the fault
        self.missed: set[str] = set()
        self.recovered_at: float | None = None
        self.recovery_error: str | None = None
        self.recovery_recorded = False
        self.fault_ended = False
        self.acted_at: float | None = None  # when people (or --auto) first acted, seconds after the fault
        self.runbook_shown = False
        self.plan_failures: list[str] = []
        self.threads: list[threading.Thread] = []
        self.drill: GameDayDrill | None = None
        plan = self.plan
        self.journal = Journal(path=options.report_dir / JOURNAL_FILE, backend=options.backend,
                               stack_file=str(options.stack_file), revision=git_revision(current_project().root),
                               mode="gameday")
        self.record = ScenarioRecord(
            nodeid=f"gameday::{plan.quarter}", feature=plan.feature, feature_file=str(plan.feature_file),
            scenario=f"GameDay {plan.quarter}: {plan.feature}", line=plan.line,
            tags=sorted(set(plan.tags) | {"gameday"}),
        )

    # --- output and the journal ---------------------------------------------------------------

    def say(self, text: str) -> None:
        with self.lock:
            try:
                self.out.write(text + "\n")
                self.out.flush()
            except OSError:  # the terminal went away (SIGHUP): the journal still records everything
                pass

    def ask(self, prompt: str) -> str:
        """A prompt answered by one line; Ctrl-D (closed input) counts as an empty answer."""
        self._prompt(prompt)
        line = self.reader.readline(None)
        return (line or "").strip()

    def _prompt(self, prompt: str) -> None:
        with self.lock:
            try:
                self.out.write(prompt)
                self.out.flush()
            except OSError:
                pass

    def since(self) -> float:
        if self.drill is None or self.t0 is None:
            return 0.0
        return self.drill.clock.now() - self.t0

    def step(self, keyword: str, text: str, status: str, duration_s: float = 0.0, error: str | None = None,
             line: int | None = None) -> None:
        with self.lock:
            self.record.steps.append(StepRecord(keyword, text, self.plan.line if line is None else line, status,
                                                round(duration_s, 3), error))
            self.save()

    def plan_step(self, step: PlanStep, status: str, duration_s: float, error: str | None = None) -> None:
        """Record a step of the scenario; a failed one fails the drill."""
        if status == "failed":
            self.plan_failures.append(f"{step.text}: {error or 'failed'}")
        self.step(step.keyword, step.text, status, duration_s, error, step.line)

    def save(self) -> None:
        with self.lock:
            if self.drill is not None:
                self.record.faults = self.drill.fault_records()
                self.record.measurements = [m.to_dict() for m in self.drill.measurements()]
                self.record.timeline = self.drill.timeline.to_dict()
            self.journal.write()

    def note(self, text: str, by: str | None = None) -> None:
        if self.drill is None:
            return
        who = by or self.o.roles.get("reporter") or "reporter"
        self.drill.timeline.note(text, by=who)
        self.say(f"  noted at +{self.since():.1f}s ({who}): {text}")
        self.save()

    @property
    def acted(self) -> bool:
        return self.acted_at is not None

    def act(self) -> None:
        """Someone acts on the incident (a command, a runbook step, the fault's end)."""
        if self.acted_at is None:
            self.acted_at = self.since()

    # --- playing one scenario step ------------------------------------------------------------

    def play(self, step: PlanStep, within: float | None = None) -> Outcome:
        """Run ``step`` through its step function. In a watcher thread its waits end when the drill
        stops, and ``within`` replaces its deadline; in the main thread Ctrl-C interrupts it."""
        drill = self.drill
        assert drill is not None
        cancellable = threading.current_thread() is not threading.main_thread()
        started = drill.clock.now()
        error: str | None = None
        with drill.watching(within, cancellable=cancellable) as seen:
            try:
                call_step(step, drill)
            except Cancelled:
                return Outcome(False, None, tuple(seen), drill.clock.now() - started, cancelled=True)
            except DrillError as exc:
                error = exc.message
            except AssertionError as exc:
                error = str(exc) or "assertion failed"
            except Exception as exc:  # noqa: BLE001 - a team's step raised: it is this step's failure, reported
                error = f"{type(exc).__name__}: {exc}"
        return Outcome(error is None, error, tuple(seen), drill.clock.now() - started)

    def show_output(self) -> None:
        """The tail of the runbook step just followed, as the on-call saw it."""
        run = self.drill.remembered.get(LAST_STEP_KEY) if self.drill is not None else None
        if isinstance(run, StepRun):
            for line in run.output.strip().splitlines()[-OUTPUT_LINES:]:
                self.say(f"    {line}")

    # --- phases -------------------------------------------------------------------------------

    def ask_roles(self) -> None:
        for role in ROLES:
            if role in self.o.roles:
                continue
            if self.o.auto:
                self.o.roles[role] = "harness" if role == "on-call" else "(not named)"
                continue
            name = self.ask(f"{role}: who holds this role? ")
            self.o.roles[role] = name or "(not named)"
        self.record.roles = dict(self.o.roles)
        self.say("roles: " + ", ".join(f"{r}={n}" for r, n in self.o.roles.items()))

    def runbook_section(self) -> str:
        path = self.o.runbook
        sections = self.plan.sections
        if not sections:
            return "(the scenario follows no runbook step, so there is no section to show)"
        if path is None or not path.is_file():
            return f"(no runbook found: expected {path or 'x-drill.runbook of the stack file'}; pass --runbook PATH)"
        text = path.read_text(encoding="utf-8")
        shown = [found for title in sections if (found := section_text(text, title))]
        if not shown:
            return f"(the runbook {path} has no section {' / '.join(sections)})"
        return f"--- runbook: {path} ---\n" + "\n\n".join(shown) + "\n--- end of runbook section ---"

    def show_runbook(self) -> None:
        oncall = self.o.roles.get("on-call", "on-call")
        self.say(f"\nPAGE for {oncall}: {self.plan.feature}. What the runbook says:\n{self.runbook_section()}\n")
        self.runbook_shown = True

    def preconditions(self) -> str | None:
        """Run the steps before the fault; the first failure is returned (the stack is not ready)."""
        for s in self.plan.preconditions:
            self.say(f"waiting until {s.text} ...")
            out = self.play(s)
            self.plan_step(s, "passed" if out.ok else "failed", out.took_s, out.error)
            if not out.ok:
                return f"{s.text}: {out.error}"
        return None

    def inject(self) -> str | None:
        """The fault step on the coordinator's cue; returns why it failed, or None."""
        drill = self.drill
        assert drill is not None
        before = len(drill.faults)
        out = self.play(self.plan.fault)
        event = drill.timeline.first(EventKind.FAULT_INJECTED)
        if out.ok and (len(drill.faults) == before or event is None):
            out = Outcome(False, "the step injected no fault (its definition never called drill.inject)",
                          out.seen, out.took_s)
        self.t0 = event.t if event is not None else drill.clock.now()
        self.plan_step(self.plan.fault, "passed" if out.ok else "failed", out.took_s, out.error)
        if not out.ok:
            return out.error
        faults = "; ".join(f.describe() for f in drill.faults[before:])
        self.say(f"INJECTED at +0.0s: {faults}")
        self.say(f"RTO target: {self.rto_s:g}s. Commands: note TEXT (or any text), restore, run COMMAND, "
                 "follow N, status, runbook, abort, end")
        return None

    def end_fault(self, by: str) -> bool:
        """The scenario's fault-end step: the coordinator's cue (network back) or the on-call's restart."""
        step = self.plan.fault_end
        if self.drill is None or step is None:
            self.say("  this drill's fault has no separate end: recover with the runbook commands")
            return True
        if self.fault_ended:
            self.say(f"  already done: {step.text}")
            return True
        self.act()
        out = self.play(step)
        if out.cancelled:
            return False
        self.plan_step(step, "passed" if out.ok else "failed", out.took_s, out.error)
        if not out.ok:
            self.say(f"  could not end the fault: {out.error}")
            return False
        self.fault_ended = True
        self.say(f"  +{self.since():.1f}s: {step.text} ({by})")
        self.save()
        return True

    def run_command(self, command: str) -> bool:
        if self.drill is None:
            return False
        self.act()
        started = self.drill.clock.now()
        text = f'the on-call runs "{command}"'
        try:
            result = self.drill.operator(command)
        except DrillError as exc:
            self.step("When", text, "failed", self.drill.clock.now() - started, exc.message)
            self.say(f"  {exc.message}")
            return False
        took = self.drill.clock.now() - started
        if result is None:
            return False
        ok = result.exit_code == 0
        self.step("When", text, "passed" if ok else "failed", took,
                  None if ok else f"exit {result.exit_code}: {result.output[-500:]}")
        self.say(f"  $ {command}  -> exit {result.exit_code} after {took:.1f}s (+{self.since():.1f}s)")
        for line in result.output.strip().splitlines()[-OUTPUT_LINES:]:
            self.say(f"    {line}")
        self.save()
        return ok

    def follow(self, args: str) -> bool:
        """``follow N [of SECTION]``: the on-call follows step N of a runbook section, as written."""
        m = FOLLOW.match(args.strip())
        if self.drill is None or m is None:
            self.say('  usage: follow N [of "SECTION"] (the section defaults to the first one paged)')
            return False
        section = m.group("section") or (self.plan.sections[0] if self.plan.sections else None)
        if section is None:
            self.say('  this scenario follows no runbook section: name one, follow N of "SECTION"')
            return False
        self.act()
        text = f'the on-call follows runbook step {m.group("number")} of "{section}"'
        started = self.drill.clock.now()
        try:
            follow_step(self.drill, section, int(m.group("number")))
        except DrillError as exc:
            self.step("When", text, "failed", self.drill.clock.now() - started, exc.message)
            self.say(f"  {exc.message}")
            return False
        self.step("When", text, "passed", self.drill.clock.now() - started)
        self.say(f"  {text}: done after {self.drill.clock.now() - started:.1f}s (+{self.since():.1f}s)")
        self.show_output()
        return True

    # --- the watchers (threads): detections, checks, recovery -----------------------------------

    def start(self, name: str, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"gameday-{name}", daemon=True)  # type: ignore[arg-type]
        self.threads.append(thread)
        thread.start()

    def detect(self, step: PlanStep, deadline_s: float) -> None:
        """Watch one detection from the fault; its deadline counts from the fault."""
        out = self.play(step, within=max(0.0, deadline_s - self.since()))
        if out.cancelled:
            return
        with self.lock:
            if out.ok:
                at = out.seen[-1].at - (self.t0 or 0.0) if out.seen else self.since()
                label = out.seen[-1].label if out.seen else step.text
                self.seen[step.text] = at
                self.plan_step(step, "passed", at)
                self.say(f"detected: {label} at +{at:.1f}s")
                if not self.runbook_shown:
                    self.show_runbook()
            else:
                self.missed.add(step.text)
                error = f"expected within {deadline_s:g}s of the fault; {out.error}"
                self.plan_step(step, "failed", self.since(), error)
                self.say(f"MISSED: {step.text} (+{deadline_s:g}s after the fault): {first_line(out.error)}")

    def incident_checks(self, detectors: list[threading.Thread]) -> None:
        """The scenario's other checks of the incident, once the detections are settled."""
        for thread in detectors:
            while thread.is_alive() and not self.stop.is_set():
                thread.join(0.2)
        for s in self.plan.checks:
            if self.stop.is_set():
                return
            if self.acted or self.recovered_at is not None:
                self.plan_step(s, "skipped", 0.0, "not checked: the on-call had already acted on the incident")
                continue
            started = self.since()
            out = self.play(s)
            if out.cancelled:
                return
            if not out.ok and self.acted_at is not None and self.acted_at >= started:
                # people changed the world while it was checked: its verdict would be about them
                self.plan_step(s, "skipped", out.took_s, f"not judged: the on-call acted at +{self.acted_at:.1f}s "
                                                        f"while it was checked ({first_line(out.error)})")
                continue
            self.plan_step(s, "passed" if out.ok else "failed", out.took_s, out.error)
            self.say(f"checked: {s.text} (+{self.since():.1f}s)" if out.ok else
                     f"CHECK FAILED: {s.text}: {first_line(out.error)}")
        self.incident_done.set()

    def watch_recovery(self) -> None:
        """Once something was detected (or people acted), the scenario's recovery step, until the time limit."""
        while not self.stop.is_set() and not (self.seen or self.acted
                                              or len(self.seen) + len(self.missed) == len(self.plan.detections)):
            self.stop.wait(self.o.poll_s)
        step = self.plan.recovery
        while not self.stop.is_set():
            remaining = self.o.max_s - self.since()
            if remaining <= 0:
                return
            out = self.play(step, within=remaining)
            if out.cancelled:
                return
            mark = next((s for s in out.seen if s.kind == EventKind.RECOVERED), None)
            if mark is None and out.ok and self.drill is not None:  # passed without marking it: it is now
                self.drill.recovered(step.text)
                mark = Seen(EventKind.RECOVERED, step.text, self.drill.clock.now())
            if mark is not None:
                self.finish_recovery(step, out, mark)
                return
            self.recovery_error = out.error
            self.stop.wait(self.o.poll_s)

    def finish_recovery(self, step: PlanStep, out: Outcome, mark: Seen) -> None:
        assert self.drill is not None
        with self.lock:
            self.recovered_at = mark.at - (self.t0 or 0.0)
            self.drill.set_rto_target(self.rto_s)  # the step may have set the scenario's own; --rto wins
            self.recovery_recorded = True
            self.plan_step(step, "passed" if out.ok else "failed", self.recovered_at, out.error)
            self.say(f"recovered: {step.text} at +{self.recovered_at:.1f}s")
            self.save()
        self.recovered.set()
        if not self.o.auto:
            self.done.set()

    def auto_oncall(self) -> None:
        """--auto: the executor plays the on-call once the incident is detected, as ``drill run`` would."""
        while not self.stop.is_set() and not self.incident_done.wait(0.2):
            pass
        if self.stop.is_set():
            return
        oncall = self.o.roles.get("on-call", "harness")
        for s in self.plan.response:
            if self.stop.is_set():
                return
            if s is self.plan.fault_end:
                by = f"on-call {oncall}" if s.text.startswith("the on-call") else "coordinator"
                if not self.end_fault(f"{by} (auto)"):
                    return self.give_up(s.text)
                continue
            if not self.auto_step(s):
                return self.give_up(s.text)
        deadline = self.plan.recovery.deadline_s or 0.0
        waited = 0.0
        while not self.recovered.wait(0.2) and not self.stop.is_set():
            waited += 0.2
            if waited > deadline:
                self.say(f"not recovered within {deadline:g}s of the on-call's last step: {self.plan.recovery.text}")
                self.done.set()
                return
        for s in self.plan.follow_up:
            if self.stop.is_set() or not self.auto_step(s):
                break
        self.done.set()

    def auto_step(self, s: PlanStep) -> bool:
        self.say(f"auto on-call: {s.keyword} {s.text}")
        if s.type == "when":
            self.act()
        out = self.play(s)
        if out.cancelled:
            return False
        self.plan_step(s, "passed" if out.ok else "failed", out.took_s, out.error)
        if s.runbook_section:
            self.show_output()
        self.say(f"  {'done' if out.ok else 'FAILED'} after {out.took_s:.1f}s (+{self.since():.1f}s)"
                 + ("" if out.ok else f": {out.error}"))
        return out.ok

    def give_up(self, text: str) -> None:
        self.say(f"auto on-call stops: '{text}' failed; the drill ends here")
        self.done.set()

    # --- the console loop ------------------------------------------------------------------------

    def handle(self, line: str) -> None:
        words = line.strip()
        if not words:
            return
        verb, _, rest = words.partition(" ")
        verb = verb.lower()
        operator = self.drill.backend.stack.operator if self.drill is not None else None
        fault_end = self.plan.fault_end
        if verb == "abort":
            raise Aborted(f"aborted by the coordinator at +{self.since():.1f}s")
        if verb == "help":
            self.say("note TEXT | any text: a note on the timeline; restore: end the fault "
                     f"({fault_end.text if fault_end else 'n/a'}); run COMMAND: an operator command; "
                     'follow N [of "SECTION"]: a runbook step as written; status; runbook; '
                     "abort: revert every fault now; end: stop the drill here")
        elif verb in ("restore", "restart"):
            by = "on-call" if fault_end is not None and fault_end.text.startswith("the on-call") else "coordinator"
            self.end_fault(f"{by} {self.o.roles.get(by, '')}".strip())
        elif verb == "run" and rest:
            self.run_command(rest.strip())
        elif verb == "follow":
            self.follow(rest)
        elif operator is not None and tuple(words.split()[: len(operator.command)]) == operator.command:
            self.run_command(words)
        elif verb == "status":
            seen = ", ".join(f"{t} at +{s:.1f}s" for t, s in self.seen.items()) or "nothing detected yet"
            self.say(f"  +{self.since():.1f}s; {seen}; recovered: {'no' if self.recovered_at is None else 'yes'}")
        elif verb == "runbook":
            self.show_runbook()
        elif verb == "end":
            self.say(f"  the coordinator ends the drill at +{self.since():.1f}s")
            self.done.set()
        elif verb == "note":
            self.note(rest.strip() or "(empty note)")
        else:
            self.note(words)

    def loop(self) -> None:
        while not self.done.is_set():
            if self.since() > self.o.max_s:
                self.say(f"time limit: not recovered after {self.o.max_s:g}s")
                self.done.set()
                break
            line = self.reader.readline(0.2)
            if line is None:
                continue
            try:
                self.handle(line)
            except Aborted:
                raise
            except (DrillError, ValueError) as exc:  # a typo must never end the drill
                message = exc.message if isinstance(exc, DrillError) else str(exc)
                self.say(f"  could not do that: {message}; type help")

    # --- the whole drill ---------------------------------------------------------------------------

    def finish_steps(self, aborted: str | None) -> None:
        for d, deadline in zip(self.plan.detections, self.plan.detection_deadlines(), strict=True):
            if d.text in self.seen or d.text in self.missed:
                continue
            if self.recovered_at is not None and self.recovered_at < deadline:
                # recovered before this detection was due: not missed, just never put to the test
                self.plan_step(d, "skipped", 0.0, f"not checked: recovered at +{self.recovered_at:.1f}s, before "
                                                  f"its deadline (+{deadline:g}s after the fault)")
                continue
            self.plan_step(d, "failed", self.since(),
                           f"not observed before the drill ended (+{self.since():.1f}s); expected within "
                           f"{deadline:g}s of the fault")
        if not self.recovery_recorded:
            why = aborted or f"not recovered when the drill ended (+{self.since():.1f}s)"
            self.plan_step(self.plan.recovery, "failed", self.since(),
                           why + (f"; last observation: {self.recovery_error[:300]}" if self.recovery_error else ""))
        rto = next((m for m in self.drill.measurements() if m.name == "RTO"), None) if self.drill else None
        rto_ok = bool(rto is not None and rto.met)
        value = "not recovered" if rto is None or rto.value_s is None else f"{rto.value_s:.1f}s"
        self.step("And", f"the recovery meets an RTO of {self.rto_s:g} seconds", "passed" if rto_ok else "failed",
                  0.0, None if rto_ok else f"RTO missed: expected recovery within {self.rto_s:g}s of the fault, "
                                           f"observed {value}", self.plan.rto_line)

    def run(self) -> int:
        plan = self.plan
        self.say(f"GameDay {plan.quarter}: {plan.feature}: {plan.scenario}; RTO target {self.rto_s:g}s")
        self.say(f"scenario: {plan.choice()}")
        self.say(f"report directory: {self.o.report_dir}")
        self.ask_roles()
        self.journal.scenarios.append(self.record)
        self.save()
        settings = DrillSettings(
            backend=self.o.backend, stack_file=self.o.stack_file, run_root=self.o.report_dir / "runs",
            report_dir=self.o.report_dir, dry_run=False, allow_live=False, confirm_live=None, features=(),
        )
        aborted: str | None = None
        code = 0
        self.say("starting the stack ...")
        started = datetime.now(UTC)
        try:
            with open_backend(settings, f"gameday-{plan.quarter}") as backend:
                self.record.stack_up_s = round((datetime.now(UTC) - started).total_seconds(), 3)
                self.say(f"stack up in {self.record.stack_up_s:.1f}s (run directory {backend.run_dir})")
                drill = GameDayDrill(backend, settings, name=self.record.scenario, stop=self.stop)
                self.drill = drill
                drill.set_rto_target(self.rto_s)
                try:
                    aborted, code = self._drill()
                finally:
                    self.stop.set()
                    join_started(self.threads, timeout_s=10)
                    try:
                        drill.close()
                        self.say("every fault reverted")
                    except DrillError as exc:
                        self.say(f"ROLLBACK FAILED: {exc.message}; run `drill cleanup --run-dir {backend.run_dir}`")
                        self.record.status = "error"
                        self.record.error = exc.message
                        code = 1
        except KeyboardInterrupt as exc:
            aborted, code = aborted or f"interrupted ({(exc.args[0] if exc.args else None) or 'Ctrl-C'})", 130
        finally:
            self.record.duration_s = round((datetime.now(UTC) - started).total_seconds(), 3)
            self.save()
        if self.record.status == "running":
            self.record.status = "failed"
            self.record.error = aborted or "the drill ended early"
        if not aborted and not self.o.auto and not self.o.interrupted:
            lessons = self.ask("lessons learned (one line, Enter to skip): ")
            self.record.lessons = lessons or None
        self.journal.finished = True
        self.save()
        from harness.report import write_reports

        files = write_reports(self.o.report_dir)
        sc = files.run.scenarios[-1]
        rto = sc.rto
        rto_text = "not recovered" if rto is None or rto.value_s is None else f"{rto.value_s:.1f}s"
        self.say(f"\nverdict: {sc.verdict}; RTO {rto_text} (target {self.rto_s:g}s): "
                 f"{'met' if rto is not None and rto.met else 'missed'}")
        self.say(f"report: {files.html}")
        for p in files.postmortems:
            self.say(f"postmortem draft: {p}")
        return code

    def _drill(self) -> tuple[str | None, int]:
        """Preconditions, cue, fault, watch; returns (why it was aborted or None, exit code)."""
        drill = self.drill
        assert drill is not None
        not_ready = self.preconditions()
        if not_ready is not None:
            self.record.status = "error"
            self.record.error = f"the stack was not ready: {not_ready}"
            self.say(f"the stack is not ready: {not_ready}")
            return self.record.error, 1
        try:
            if not self.o.auto:
                while True:
                    answer = self.ask("stack ready. Press Enter to inject the fault (or type abort): ")
                    if answer.lower() == "abort":
                        raise Aborted("aborted by the coordinator before the fault")
                    if not answer:
                        break
                    self.handle(answer)
            failed = self.inject()
            if failed is not None:
                self.record.status = "error"
                self.record.error = f"the fault could not be injected: {failed}"
                self.say(f"the fault could not be injected: {failed}")
                return self.record.error, 1
            detectors: list[threading.Thread] = []
            for step, deadline in zip(self.plan.detections, self.plan.detection_deadlines(), strict=True):
                self.start("detect", self.detect, step, deadline)
                detectors.append(self.threads[-1])
            self.start("checks", self.incident_checks, detectors)
            self.start("recovery", self.watch_recovery)
            if self.o.auto:
                self.start("auto-oncall", self.auto_oncall)
            self.loop()
        except (Aborted, KeyboardInterrupt) as exc:
            self.stop.set()
            how = (exc.args[0] if exc.args else None) or "Ctrl-C"
            reason = exc.reason if isinstance(exc, Aborted) else f"interrupted ({how}) at +{self.since():.1f}s"
            self.say(f"ABORT: {reason}: reverting every fault")
            drill.timeline.note(f"abort: {reason}", by=self.o.roles.get("coordinator") or "coordinator")
            self.o.interrupted = isinstance(exc, KeyboardInterrupt)
            self.settle()
            self.finish_steps(reason)
            self.record.status = "failed"
            self.record.error = reason + "; every fault was reverted"
            return reason, 130 if isinstance(exc, KeyboardInterrupt) else 1
        self.settle()
        self.finish_steps(None)
        rto = next(m for m in drill.measurements() if m.name == "RTO")
        passed = bool(rto.met) and not self.plan_failures
        self.record.status = "passed" if passed else "failed"
        if not passed:
            failures = self.plan_failures or [f"RTO missed: {rto.describe()}"]
            self.record.error = "; ".join(failures)[:1000]
        return None, 0 if passed else 1

    def settle(self) -> None:
        """Stop the watchers and wait for them, so no step is recorded after the verdict."""
        self.stop.set()
        # on SIGTERM/Ctrl-C too: the signal may land inside Thread.start() (seen in the traceback of a CI-like
        # run: KeyboardInterrupt raised from the handler while start() waited), leaving a registered watcher
        # that never started; joining it raised and skipped the rollback
        join_started(self.threads, timeout_s=10)


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # SIGTERM (kill) and SIGHUP (the terminal closed) unwind like Ctrl-C: every fault is reverted,
    # the stack stopped and the report written.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_gameday(options: Options, out: TextIO | None = None, fd: int | None = None) -> int:
    """Run one GameDay; the exit code of ``drill gameday`` (0 passed, 1 failed/aborted, 130 Ctrl-C)."""
    rto_target(options.plan, options.rto_s)  # fail on a missing RTO before anything starts
    stream = out or sys.stdout
    reader = LineReader(sys.stdin.fileno() if fd is None else fd)
    with _signals_as_interrupt():
        return GameDay(options, stream, reader).run()

"""GameDay: the quarterly drill with people in the loop (``drill gameday Q2``).

The harness plays the environment, people play themselves:

1. it asks who holds each role (owner, coordinator, on-call, observer, reporter);
2. it starts a fresh stack (same backends and probes as ``drill run``) and waits until it is healthy;
3. on the coordinator's cue (Enter) it injects the quarter's fault (:data:`QUARTERS`);
4. it watches the quarter's detections (alert, log line) and prints each as it happens
   (``detected: ... at +3.4s``), showing the on-call the runbook section when the first one fires;
5. meanwhile people type into the console: notes (stamped onto the timeline), ``restore`` (the
   coordinator ends the fault, e.g. the network is back), ``run <command>`` (the on-call's runbook
   command, timed as a runbook step), ``abort`` (revert every fault now; Ctrl-C does the same);
6. it watches for recovery and ends the drill with the RTO verdict, asks for lessons learned, and
   writes the same report as ``drill run`` (journal, junit, cucumber, HTML, postmortem).

``--auto``: the executor plays the on-call: after the first detection it ends the fault and runs the
recovery commands itself; people can still type notes or abort.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.backends.base import Backend
from harness.clock import EventKind
from harness.drill import Drill, open_backend
from harness.errors import DrillError, InputError
from harness.faults.base import Fault, FaultContext
from harness.faults.data import FeedCorruption
from harness.faults.network import LinkDown
from harness.faults.service import FullOutage
from harness.faults.trading import PriceShock
from harness.journal import JOURNAL_FILE, Journal, ScenarioRecord, StepRecord, git_revision
from harness.plugin import DrillSettings
from harness.probes.alertmanager import AlertFiring
from harness.probes.base import Probe
from harness.probes.http import HttpHealth
from harness.probes.logs import LogMatch
from harness.probes.prometheus import MetricQuery
from harness.project import current_project
from harness.report.runbook_text import section_text
from harness.trading import (
    Check,
    TradingTruth,
    kill_switch_active,
    open_positions,
    services_healthy,
    sla_status_is,
    venue_connected,
)
from harness.waiting import Observation

ROLES = ("owner", "coordinator", "on-call", "observer", "reporter")
ProbeFactory = Callable[[Backend], Probe]


# --- the quarter table ------------------------------------------------------------------------------


def _role_url(backend: Backend, role: str) -> str:
    spec = backend.stack.services_with_role(role)[0]
    return backend.endpoint(spec.name, next(iter(spec.ports))).url


def _alert(name: str, severity: str) -> ProbeFactory:
    return lambda b: AlertFiring(_role_url(b, "alertmanager"), name, severity=severity)


def _engine_log(text: str) -> ProbeFactory:
    import re

    return lambda b: LogMatch(b.log_path(b.stack.trading.engine), re.escape(text), from_start=True)


def _broker_connected(b: Backend) -> Probe:
    return venue_connected(TradingTruth(b))


def _lab_mode(b: Backend) -> Probe:
    return MetricQuery(_role_url(b, "prometheus"), b.stack.trading.metric("mode").replace("{mode}", "lab"), "==", 1)


def _trading_resumed(b: Backend) -> Probe:
    switch = kill_switch_active(TradingTruth(b), False)
    health = HttpHealth.for_service(b, b.stack.trading.engine)

    def both() -> Observation:
        x, y = switch(), health()
        return Observation(x.ok and y.ok, f"{x.observed}; health: {y.observed}")

    return Check("trading resumed: kill switch off and engine healthy", both)


def _all_healthy(b: Backend) -> Probe:
    return services_healthy(b, list(b.stack.services))


@dataclass(frozen=True)
class Detection:
    text: str  # as a step: 'a P0 alert "X" fires within 25 seconds'
    kind: EventKind
    within_s: float  # deadline, seconds after the fault
    probe: ProbeFactory
    label: str


@dataclass(frozen=True)
class QuarterDrill:
    quarter: str
    title: str
    feature: str
    tags: tuple[str, ...]
    sections: tuple[str, ...]  # runbook section titles to show the on-call, first found wins
    rto_s: float
    preconditions: tuple[tuple[str, ProbeFactory, float], ...]
    fault_text: str
    fault: Callable[[Backend, FaultContext], Fault]
    detections: tuple[Detection, ...]
    restore_text: str | None  # the fault ends (coordinator's cue, or the on-call's restart)
    restore_by_oncall: bool
    recovery_commands: tuple[tuple[str, dict[str, str]], ...]  # x-drill.trading.commands names, values
    recovered_text: str
    recovered: ProbeFactory


_RUNNING = ("the trading stack is running in lab mode", _lab_mode, 30.0)

QUARTERS: dict[str, QuarterDrill] = {
    "Q1": QuarterDrill(
        "Q1", "kill switch trigger", "Kill switch triggered", ("gameday", "kill_switch", "p0", "q1"),
        ("Kill Switch Triggered",), 60.0,
        (_RUNNING, ("the trading engine holds open positions", lambda b: open_positions(TradingTruth(b)), 90.0)),
        "the market drops 8% over 3 bars on every symbol",
        lambda b, ctx: PriceShock(b, pct=-8.0, bars=3, endpoint=b.stack.trading.fault_endpoint("feed"), ctx=ctx),
        (Detection('a P0 alert "KillSwitchActive" fires within 30 seconds', EventKind.ALERT_FIRED, 30.0,
                   _alert("KillSwitchActive", "P0"), "P0 KillSwitchActive fired"),
         Detection('the trading engine log shows "Kill switch activated" within 30 seconds', EventKind.DETECTED, 30.0,
                   _engine_log("Kill switch activated"), "log: Kill switch activated")),
        None, False,
        (("reset_kill_switch", {"approver": "head-of-risk", "reason": "gameday recovery"}),),
        "trading resumes: kill switch off and the engine healthy", _trading_resumed,
    ),
    "Q2": QuarterDrill(
        "Q2", "broker disconnection", "Broker connection lost", ("broker", "gameday", "p0", "q2"),
        ("Broker Connection Lost",), 60.0,
        (_RUNNING, ("the trading engine is connected to the broker", _broker_connected, 30.0)),
        "the broker link goes down",
        lambda b, ctx: LinkDown(b, "broker", ctx=ctx),
        (Detection('the trading engine log shows "Reconnect attempt 3/3 failed" within 30 seconds',
                   EventKind.DETECTED, 30.0, _engine_log("Reconnect attempt 3/3 failed"),
                   "log: Reconnect attempt 3/3 failed"),
         Detection('a P0 alert "BrokerManualInterventionRequired" fires within 40 seconds', EventKind.ALERT_FIRED,
                   40.0, _alert("BrokerManualInterventionRequired", "P0"),
                   "P0 BrokerManualInterventionRequired fired")),
        "the broker link is restored", False,
        (("reconnect", {}),),
        "the trading engine is connected to the broker", _broker_connected,
    ),
    "Q3": QuarterDrill(
        "Q3", "data corruption", "Data SLA violation and corrupted market data", ("data", "gameday", "p1", "q3"),
        ("Data SLA Violation",), 120.0,
        (_RUNNING,),
        "the market data feed starts serving nan bars",
        lambda b, ctx: FeedCorruption(b, "nan", endpoint=b.stack.trading.fault_endpoint("feed"), ctx=ctx),
        (Detection('a P1 alert "DataSLAViolation" fires within 30 seconds', EventKind.ALERT_FIRED, 30.0,
                   _alert("DataSLAViolation", "P1"), "P1 DataSLAViolation fired"),),
        "the market data feed is repaired", False,
        (("refetch_data", {}), ("validate_data", {})),
        'the SLA report shows status "ok"',
        lambda b: sla_status_is(TradingTruth(b), "ok"),
    ),
    "Q4": QuarterDrill(
        "Q4", "full system failure", "Full system failure", ("gameday", "outage", "p0", "q4"),
        ("Trading Engine Down", "Full system failure", "Rollback"), 60.0,
        (_RUNNING,),
        "every service of the trading stack crashes",
        lambda b, ctx: FullOutage(b, ctx=ctx),
        (Detection('a P0 alert "TradingEngineDown" fires within 30 seconds', EventKind.ALERT_FIRED, 30.0,
                   _alert("TradingEngineDown", "P0"), "P0 TradingEngineDown fired"),),
        "the on-call restarts every service", True,
        (),
        "every service is healthy", _all_healthy,
    ),
}


def quarter_drill(quarter: str) -> QuarterDrill:
    q = quarter.upper()
    if q not in QUARTERS:
        raise InputError(f"expected a quarter Q1..Q4, observed {quarter!r}", hint="drill gameday Q2")
    return QUARTERS[q]


# --- console input that does not block the watcher --------------------------------------------------


class LineReader:
    """Lines from a file descriptor with a timeout (select), so the drill can end while nobody types."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def readline(self, timeout: float | None) -> str | None:
        """One line without its newline; None on timeout or once the input is closed."""
        while b"\n" not in self.buffer:
            if self.closed:
                if self.buffer:
                    line, self.buffer = self.buffer, b""
                    return line.decode(errors="replace").strip("\r")
                return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.closed = True
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")


# --- the session ------------------------------------------------------------------------------------


class Aborted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Options:
    quarter: str
    auto: bool
    stack_file: Path
    backend: str
    report_dir: Path
    runbook: Path | None
    rto_s: float | None
    roles: dict[str, str] = field(default_factory=dict)
    max_s: float = 900.0
    poll_s: float = 0.5
    interrupted: bool = False


class GameDay:
    def __init__(self, options: Options, out: TextIO, reader: LineReader) -> None:
        self.o = options
        self.spec = quarter_drill(options.quarter)
        self.out = out
        self.reader = reader
        self.rto_s = options.rto_s if options.rto_s is not None else self.spec.rto_s
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.t0: float | None = None
        self.seen: dict[str, float] = {}
        self.recovered_at: float | None = None
        self.runbook_shown = False
        self.missed: set[str] = set()
        self.last_obs: dict[str, str] = {}
        self.drill: Drill | None = None
        self.journal = Journal(path=options.report_dir / JOURNAL_FILE, backend=options.backend,
                               stack_file=str(options.stack_file), revision=git_revision(current_project().root),
                               mode="gameday")
        self.record = ScenarioRecord(
            nodeid=f"gameday::{self.spec.quarter}", feature=self.spec.feature,
            feature_file=f"gameday {self.spec.quarter}",
            scenario=f"GameDay {self.spec.quarter}: {self.spec.title}", line=1, tags=list(self.spec.tags),
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

    def step(self, keyword: str, text: str, status: str, duration_s: float = 0.0, error: str | None = None) -> None:
        with self.lock:
            line = len(self.record.steps) + 2
            self.record.steps.append(StepRecord(keyword, text, line, status, round(duration_s, 3), error))
            self.save()

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
        if path is None or not path.is_file():
            return f"(no runbook found: expected {path or 'docs/incident-response-runbook.md'}; pass --runbook PATH)"
        text = path.read_text(encoding="utf-8")
        for title in self.spec.sections:
            found = section_text(text, title)
            if found:
                return f"--- runbook: {path} ---\n{found}\n--- end of runbook section ---"
        return f"(the runbook {path} has no section {' / '.join(self.spec.sections)})"

    def show_runbook(self) -> None:
        oncall = self.o.roles.get("on-call", "on-call")
        self.say(f"\nPAGE for {oncall}: {self.spec.feature}. What the runbook says:\n{self.runbook_section()}\n")
        self.runbook_shown = True

    def preconditions(self, drill: Drill) -> None:
        for i, (text, factory, within) in enumerate(self.spec.preconditions):
            self.say(f"waiting until {text} (up to {within:g}s) ...")
            started = drill.clock.now()
            try:
                drill.expect(factory(drill.backend), within=within, kind=EventKind.NOTE, label=text)
            except DrillError as exc:
                self.step("Given" if i == 0 else "And", text, "failed", drill.clock.now() - started, exc.message)
                raise
            self.step("Given" if i == 0 else "And", text, "passed", drill.clock.now() - started)

    def inject(self, drill: Drill) -> None:
        fault = self.spec.fault(drill.backend, drill.ctx)
        self.t0 = drill.clock.now()
        drill.inject(fault)
        self.step("When", self.spec.fault_text, "passed", drill.clock.now() - self.t0)
        self.say(f"INJECTED at +0.0s: {fault.describe()}")
        self.say(f"RTO target: {self.rto_s:g}s. Commands: note TEXT (or any text), restore, run COMMAND, status, "
                 "runbook, abort, end")

    def end_fault(self, by: str) -> None:
        """The fault ends: the coordinator's cue (network back) or the on-call's restart (Q4)."""
        if self.drill is None or self.spec.restore_text is None:
            self.say("  this drill's fault has no separate end: recover with the runbook commands")
            return
        started = self.drill.clock.now()
        try:
            self.drill.restore()
        except DrillError as exc:
            self.step("When", self.spec.restore_text, "failed", self.drill.clock.now() - started, exc.message)
            self.say(f"  could not end the fault: {exc.message}")
            return
        self.step("When", self.spec.restore_text, "passed", self.drill.clock.now() - started)
        self.say(f"  +{self.since():.1f}s: {self.spec.restore_text} ({by})")
        self.save()

    def run_command(self, command: str) -> bool:
        if self.drill is None:
            return False
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
        for line in result.output.strip().splitlines()[-8:]:
            self.say(f"    {line}")
        self.save()
        return ok

    # --- the watcher (a thread): detections, then recovery --------------------------------------

    def watch(self) -> None:
        assert self.drill is not None
        drill = self.drill
        probes = {d.text: d.probe(drill.backend) for d in self.spec.detections}
        recovered = self.spec.recovered(drill.backend)
        while not self.stop.is_set():
            now = self.since()
            for d in self.spec.detections:
                if d.text in self.seen or d.text in self.missed:
                    continue
                obs = probes[d.text]()
                self.last_obs[d.text] = obs.observed
                if obs.ok:
                    drill.timeline.record(d.kind, d.label, observed=obs.observed[:300], waited_s=round(now, 3))
                    self.seen[d.text] = now
                    self.step("Then", d.text, "passed", now)
                    self.say(f"detected: {d.label} at +{now:.1f}s")
                    if not self.runbook_shown:
                        self.show_runbook()
                elif now > d.within_s:
                    self.missed.add(d.text)
                    self.step("Then", d.text, "failed", now,
                              f"expected within {d.within_s:g}s of the fault; observed: {obs.observed[:300]}")
                    self.say(f"MISSED: {d.label}: not within {d.within_s:g}s (observed: {obs.observed[:200]})")
            if self.seen or self.restored_or_acted():
                obs = recovered()
                if obs.ok:
                    self.recovered_at = self.since()
                    drill.recovered(self.spec.recovered_text)
                    self.save()
                    self.done.set()
                    return
            if now > self.o.max_s:
                self.say(f"time limit: not recovered after {self.o.max_s:g}s")
                self.done.set()
                return
            self.stop.wait(self.o.poll_s)

    def restored_or_acted(self) -> bool:
        return any(s.text.startswith("the on-call") or s.text == self.spec.restore_text for s in self.record.steps)

    def auto_oncall(self) -> None:
        """--auto: the executor plays the on-call once the incident is detected."""
        # like an on-call who acts on the page: wait until every detection fired (or missed its deadline)
        while not self.stop.is_set() and len(self.seen) + len(self.missed) < len(self.spec.detections):
            self.stop.wait(0.2)
        if self.stop.is_set():
            return
        oncall = self.o.roles.get("on-call", "harness")
        if self.spec.restore_text is not None and not self.spec.restore_by_oncall:
            self.end_fault("coordinator (auto)")
        elif self.spec.restore_by_oncall:
            self.end_fault(f"on-call {oncall} (auto)")
        for name, values in self.spec.recovery_commands:
            command = self.drill.backend.stack.trading.command_line(name, **values) if self.drill else name
            if self.stop.is_set():
                return
            self.say(f"auto on-call runs: {command}")
            self.run_command(command)

    # --- the console loop ------------------------------------------------------------------------

    def handle(self, line: str) -> None:
        words = line.strip()
        if not words:
            return
        verb, _, rest = words.partition(" ")
        verb = verb.lower()
        operator = self.drill.backend.stack.operator if self.drill is not None else None
        if verb == "abort":
            raise Aborted(f"aborted by the coordinator at +{self.since():.1f}s")
        if verb == "help":
            self.say("note TEXT | any text: a note on the timeline; restore: end the fault "
                     f"({self.spec.restore_text or 'n/a'}); run COMMAND: the on-call's runbook command; status; "
                     "runbook; abort: revert every fault now; end: stop the drill here")
        elif verb in ("restore", "restart"):
            by = "on-call" if self.spec.restore_by_oncall else "coordinator"
            self.end_fault(f"{by} {self.o.roles.get(by, '')}".strip())
        elif verb == "run" and rest:
            self.run_command(rest.strip())
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
        for d in self.spec.detections:
            if d.text not in self.seen and d.text not in self.missed:
                if self.recovered_at is not None and self.recovered_at < d.within_s:
                    # recovered before this detection was due: not missed, just never put to the test
                    self.step("Then", d.text, "skipped", 0.0,
                              f"not checked: recovered at +{self.recovered_at:.1f}s, before its deadline "
                              f"(+{d.within_s:g}s)")
                    continue
                self.step("Then", d.text, "failed", self.since(),
                          f"not observed before the drill ended (+{self.since():.1f}s); last observation: "
                          f"{self.last_obs.get(d.text, 'none')[:300]}")
        if self.recovered_at is not None:
            self.step("Then", self.spec.recovered_text, "passed", self.recovered_at)
        else:
            self.step("Then", self.spec.recovered_text, "failed", self.since(),
                      aborted or f"not recovered when the drill ended (+{self.since():.1f}s)")
        rto = next((m for m in self.drill.measurements() if m.name == "RTO"), None) if self.drill else None
        rto_ok = bool(rto is not None and rto.met)
        value = "not recovered" if rto is None or rto.value_s is None else f"{rto.value_s:.1f}s"
        self.step("And", f"the recovery meets an RTO of {self.rto_s:g} seconds", "passed" if rto_ok else "failed",
                  0.0, None if rto_ok else f"RTO missed: expected recovery within {self.rto_s:g}s of the fault, "
                                           f"observed {value}")

    def run(self) -> int:
        self.say(f"GameDay {self.spec.quarter}: {self.spec.title} ({self.spec.feature}); RTO target {self.rto_s:g}s")
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
            with open_backend(settings, f"gameday-{self.spec.quarter}") as backend:
                self.record.stack_up_s = round((datetime.now(UTC) - started).total_seconds(), 3)
                self.say(f"stack up in {self.record.stack_up_s:.1f}s (run directory {backend.run_dir})")
                drill = Drill(backend, settings, name=self.record.scenario)
                self.drill = drill
                drill.set_rto_target(self.rto_s)
                try:
                    aborted, code = self._drill(drill)
                finally:
                    self.stop.set()
                    try:
                        drill.close()
                        self.say("every fault reverted")
                    except DrillError as exc:
                        self.say(f"ROLLBACK FAILED: {exc.message}; run `drill cleanup --run-dir {backend.run_dir}`")
                        self.record.status = "error"
                        self.record.error = exc.message
                        code = 1
        except KeyboardInterrupt:
            aborted, code = aborted or "interrupted (Ctrl-C)", 130
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

    def _drill(self, drill: Drill) -> tuple[str | None, int]:
        """Preconditions, cue, fault, watch; returns (why it was aborted or None, exit code)."""
        try:
            self.preconditions(drill)
        except DrillError as exc:
            self.record.status = "error"
            self.record.error = f"the stack was not ready: {exc.message}"
            self.say(f"the stack is not ready: {exc.message}")
            return self.record.error, exc.exit_code
        try:
            if not self.o.auto:
                while True:
                    answer = self.ask("stack ready. Press Enter to inject the fault (or type abort): ")
                    if answer.lower() == "abort":
                        raise Aborted("aborted by the coordinator before the fault")
                    if not answer:
                        break
                    self.handle(answer)
            self.inject(drill)
            watcher = threading.Thread(target=self.watch, name="gameday-watch", daemon=True)
            watcher.start()
            helper = None
            if self.o.auto:
                helper = threading.Thread(target=self.auto_oncall, name="gameday-auto-oncall", daemon=True)
                helper.start()
            self.loop()
            self.stop.set()
            watcher.join(timeout=10)
            if helper is not None:
                helper.join(timeout=60)
        except (Aborted, KeyboardInterrupt) as exc:
            self.stop.set()
            reason = exc.reason if isinstance(exc, Aborted) else f"interrupted (Ctrl-C) at +{self.since():.1f}s"
            self.say(f"ABORT: {reason}: reverting every fault")
            drill.timeline.note(f"abort: {reason}", by=self.o.roles.get("coordinator") or "coordinator")
            self.o.interrupted = isinstance(exc, KeyboardInterrupt)
            self.finish_steps(reason)
            self.record.status = "failed"
            self.record.error = reason + "; every fault was reverted"
            return reason, 130 if isinstance(exc, KeyboardInterrupt) else 1
        self.finish_steps(None)
        if self.recovered_at is not None:
            self.say(f"recovered: {self.spec.recovered_text} at +{self.recovered_at:.1f}s")
        failed = [s for s in self.record.steps if s.status == "failed"]
        rto = next(m for m in drill.measurements() if m.name == "RTO")
        passed = bool(rto.met) and not any(s.text in {d.text for d in self.spec.detections} for s in failed)
        self.record.status = "passed" if passed else "failed"
        if not passed:
            self.record.error = "; ".join(f"{s.text}: {s.error}" for s in failed if s.error)[:1000] or "failed"
        return None, 0 if passed else 1


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

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
    quarter_drill(options.quarter)  # fail on a bad quarter before anything starts
    stream = out or sys.stdout
    reader = LineReader(sys.stdin.fileno() if fd is None else fd)
    with _signals_as_interrupt():
        return GameDay(options, stream, reader).run()

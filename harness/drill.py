"""One drill in progress: the object a scenario's steps act through.

A :class:`Drill` owns the scenario's timeline and fault context. Steps call it once each:

* ``inject(fault)``: checks safety (live refusal, halt file), applies the fault, records it on the
  timeline and in the ledger, and guarantees its rollback when the scenario ends, whatever
  happened (``close()`` runs in pytest teardown, also after a failed step or Ctrl-C).
* ``restore(...)``: roll back chosen faults now (a recovery step), still idempotently.
* ``expect(probe, within=...)``: the one wait; its success lands on the timeline as a detection,
  an alert, or a recovery, so MTTD and RTO are computed rather than guessed.
* ``holds(probe, for_s=...)``: a condition that must stay true for a while ("no new order").
* ``operator("engine-ctl status")``: the on-call's command, parsed with shlex (never a shell),
  timed as a runbook step.

With ``--dry-run`` nothing is touched: every fault, target and expected detection is printed and
recorded, and every wait is reported as planned.
"""

from __future__ import annotations

import re
import shlex
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from harness.backends import create_backend
from harness.backends.base import Backend, CommandResult
from harness.clock import Clock, EventKind, Measurement, Targets, Timeline
from harness.errors import FaultRollbackError, InputError, WaitTimeout
from harness.faults.base import Fault, FaultContext
from harness.faults.ledger import cleanup as ledger_cleanup
from harness.probes.base import Probe
from harness.safety import DryRun, FaultWatch, SafetyPolicy
from harness.stack import load_stack
from harness.trading import TradingTruth
from harness.waiting import Observation, WaitResult, wait_until

if TYPE_CHECKING:
    from harness.plugin import DrillSettings

F = TypeVar("F", bound=Fault)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "drill"


@contextmanager
def open_backend(settings: DrillSettings, name: str) -> Iterator[Backend]:
    """A started stack for one scenario (not started in a dry run); always brought down."""
    stack = load_stack(settings.stack_file)
    run_dir = settings.run_root / f"{_slug(name)}-{uuid.uuid4().hex[:6]}"
    backend = create_backend(settings.backend, stack, run_dir)
    policy = SafetyPolicy(
        allow_live=settings.allow_live, confirmation=settings.confirm_live, runs_root=settings.run_root
    )
    policy.check_live(stack)  # refuse before starting anything
    policy.check_halt(run_dir)  # a halted run starts no further stack
    if settings.dry_run:
        plan = getattr(backend, "plan", None)
        if plan is not None:
            plan()  # addresses for descriptions only; nothing is started or contacted
        yield backend
        return
    backend.up()
    try:
        yield backend
    finally:
        try:
            ledger_cleanup(backend, backend.run_dir).raise_if_failed()
        finally:
            backend.down()


class Drill:
    def __init__(self, backend: Backend, settings: DrillSettings, *, name: str, clock: Clock | None = None) -> None:
        self.backend = backend
        self.settings = settings
        self.name = name
        self.clock = clock or Clock()
        self.timeline = Timeline(self.clock, name=name)
        self.dry_run = DryRun() if settings.dry_run else None
        self.ctx = FaultContext(
            timeline=self.timeline,
            safety=SafetyPolicy(
                allow_live=settings.allow_live, confirmation=settings.confirm_live, runs_root=settings.run_root
            ),
            dry_run=self.dry_run,
            run_dir=backend.run_dir,
        )
        self.targets = Targets()
        self.faults: list[Fault] = []
        self.last_command: CommandResult | None = None
        self.remembered: dict[str, Any] = {}
        self._log_marks: dict[str, int] | None = None  # log sizes when the first fault went in
        assert self.ctx.safety is not None
        self.watch = FaultWatch(backend, self.ctx.safety, backend.run_dir, lambda: self.faults, self.timeline)
        self._trading: TradingTruth | None = None

    # --- the stack's trading truth and operator commands, through its declared adapter ---------------

    @property
    def trading(self) -> TradingTruth:
        """Readings of positions, orders, kill switch, SLA and the venue's truth (``x-drill.trading``)."""
        if self._trading is None:
            self._trading = TradingTruth(self.backend)
        return self._trading

    def command_line(self, name: str, **values: str) -> str:
        """The stack's operator command ``name`` (``x-drill.trading.commands``), values shell-quoted into it."""
        return self.backend.stack.trading.command_line(name, **values)

    # --- faults -------------------------------------------------------------------------------------

    def inject(self, fault: F) -> F:
        """Apply ``fault`` (built with ``ctx=drill.ctx``); it is rolled back at the latest in ``close()``."""
        if fault.ctx is not self.ctx:
            raise InputError(f"fault {fault.describe()} was not built with this drill's context (ctx=drill.ctx)")
        if self._log_marks is None:
            self._log_marks = {s: self._log_size(s) for s in self.backend.stack.services}
        self.faults.append(fault)
        fault.inject()
        if self.dry_run is not None:
            self._say(f"would inject: {fault.describe()}")
        return fault

    def restore(self, which: Callable[[Fault], bool] | None = None) -> list[Fault]:
        """Roll back the faults ``which`` selects (all when None), newest first."""
        chosen = [f for f in reversed(self.faults) if which is None or which(f)]
        for fault in chosen:
            fault.rollback()
            if self.dry_run is not None:
                self._say(f"would roll back: {fault.describe()}")
        return chosen

    def close(self) -> None:
        """Roll back every fault, newest first; every rollback is attempted even if one fails."""
        errors: list[BaseException] = []
        for fault in reversed(self.faults):
            try:
                fault.rollback()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below, never swallowed
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise FaultRollbackError(
                f"{len(errors)} faults could not be rolled back: " + "; ".join(str(e) for e in errors),
                hint="run `drill cleanup` to retry from the ledger",
            ) from errors[0]

    def fault_records(self) -> list[dict[str, object]]:
        return [f.record() | {"description": f.describe(), "state": f.state.value} for f in self.faults]

    def log_mark(self, service: str) -> int:
        """Byte offset in ``service``'s log where this drill's first fault began (0 before any fault)."""
        return 0 if self._log_marks is None else self._log_marks.get(service, 0)

    def _log_size(self, service: str) -> int:
        try:
            return self.backend.log_path(service).stat().st_size
        except OSError:
            return 0

    # --- waiting --------------------------------------------------------------------------------------

    def expect(
        self,
        probe: Probe,
        *,
        within: float,
        kind: EventKind = EventKind.DETECTED,
        service: str | None = None,
        label: str | None = None,
        allow_stopped: bool = True,
    ) -> WaitResult | None:
        """Wait until ``probe`` is satisfied, at most ``within`` seconds; record the moment on the timeline."""
        what = probe.describe()
        if self.dry_run is not None:
            self._say(f"would expect within {within:g}s: {what}")
            return None
        def watched() -> Observation:
            self.watch.check()  # a halt or an outside revert ends the wait with what really happened
            return probe()

        result = wait_until(
            watched,
            deadline_s=within,
            what=what,
            backend=self.backend,
            service=service,
            clock=self.clock,
            allow_stopped=allow_stopped,
        )
        self.timeline.record(kind, label or what, observed=result.observed[:300], waited_s=round(result.elapsed_s, 3))
        return result

    def holds(self, probe: Probe, *, for_s: float, service: str | None = None, interval_s: float = 0.2) -> None:
        """``probe`` must stay satisfied for ``for_s`` seconds; fails at the first observation that is not."""
        what = probe.describe()
        if self.dry_run is not None:
            self._say(f"would check for {for_s:g}s that: {what}")
            return
        start = self.clock.now()
        attempts = 0
        while True:
            self.watch.check()
            obs: Observation = probe()
            attempts += 1
            if not obs.ok:
                elapsed = self.clock.now() - start
                tail = "\n    ".join(self.backend.log_tail(service, 15)) if service else ""
                raise WaitTimeout(
                    f"expected for {for_s:g}s: {what}\n"
                    f"  observed after {elapsed:.1f}s (check {attempts}): {obs.observed}"
                    + (f"\n  last log lines of {service}:\n    {tail}" if tail else ""),
                    hint="the condition broke during the hold period; see the observation above",
                )
            if self.clock.now() - start >= for_s:
                self.timeline.note(f"held: {what}", waited_s=round(self.clock.now() - start, 3))
                return
            self.clock.sleep(interval_s)

    # --- operator commands ------------------------------------------------------------------------------

    def operator(self, command: str, *, timeout: float = 60.0) -> CommandResult | None:
        """Run an operator CLI command line as the on-call would type it (shlex-split, no shell)."""
        argv = shlex.split(command)
        op = self.backend.stack.operator
        if op is None or not argv or tuple(argv[: len(op.command)]) != op.command:
            expected = " ".join(op.command) if op else "(the stack declares no x-drill.operator)"
            raise InputError(
                f"'{command}' is not an operator command of this stack",
                hint=f"operator commands start with: {expected}",
            )
        args = argv[len(op.command) :]
        if self.dry_run is not None:
            self._say(f"would run: {command}")
            return None
        self.timeline.record(EventKind.STEP_STARTED, command)
        result = self.backend.operator(args, timeout=timeout)
        self.timeline.record(
            EventKind.STEP_ENDED, command, exit_code=result.exit_code, duration_s=round(result.duration_s, 3)
        )
        self.last_command = result
        if result.timed_out:
            raise WaitTimeout(
                f"`{command}` did not finish within {timeout:g}s; output so far:\n{result.output[-2000:]}"
            )
        return result

    # --- recovery and measurements ------------------------------------------------------------------------

    def recovered(self, label: str) -> None:
        if self.dry_run is None:
            self.timeline.record(EventKind.RECOVERED, label)

    def set_rto_target(self, seconds: float) -> None:
        self.targets = Targets(rto_s=seconds, mttd_s=self.targets.mttd_s, time_to_kill_s=self.targets.time_to_kill_s)

    def measurements(self) -> tuple[Measurement, ...]:
        return self.timeline.measurements(self.targets)

    def _say(self, line: str) -> None:
        self.timeline.note(f"[dry-run] {line}")
        print(f"  [dry-run] {line}", file=sys.stdout, flush=True)


__all__ = ["Drill", "open_backend"]

"""What every fault is, and the lifecycle every fault shares.

A :class:`Fault` describes one failure (``describe()``), applies it (``inject()``) and reverts it
(``rollback()``). Subclasses implement only ``_inject``/``_rollback`` and their parameters; the base
class owns the guarantees:

* **Safety first**: before anything is touched, the run's :class:`~harness.safety.SafetyPolicy`
  is checked (live stacks refused, halt files honoured). It is on by default.
* **Ledger before action**: an ``inject`` line is appended (fsync) to ``<run_dir>/ledger.jsonl``
  *before* the fault is applied, so even a run killed half-way leaves enough for
  ``drill cleanup`` to revert it (:mod:`harness.faults.ledger`).
* **A failed inject rolls back** what it may have half-applied, then raises
  :class:`~harness.errors.FaultInjectionError` (a rollback failure is attached as a note).
* **Rollback is idempotent**: a second call, or a call on a fault never injected, is a no-op. A
  failure raises :class:`~harness.errors.FaultRollbackError` chained to its cause, and the fault
  stays pending (in memory and in the ledger) so it can be retried.
* **As a context manager** the exit *always* rolls back (exception, ``KeyboardInterrupt``, normal
  exit); a rollback failure never masks the body's exception: it is attached to it as a note.
* **Dry run**: with a :class:`~harness.safety.DryRun` in the context nothing is touched at all.
* **Timeline**: with a :class:`~harness.clock.Timeline` in the context, ``fault_injected`` and
  ``fault_rolled_back`` events are recorded.

Subclasses implement each ``_rollback`` so that it is safe on a half-applied fault and on one
already reverted (``drill cleanup`` may call it again after a crash).
"""

from __future__ import annotations

import abc
import enum
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

from harness.clock import EventKind, Stamp, Timeline
from harness.errors import DrillError, FaultError, FaultInjectionError, FaultRollbackError, InputError
from harness.safety import DryRun, SafetyPolicy

if TYPE_CHECKING:
    from harness.backends.base import Backend

Scalar = str | int | float | bool | None
ParamValue = Scalar | list[str]


@dataclass(frozen=True)
class FaultContext:
    """How faults are applied in one run. The defaults are the safe ones."""

    timeline: Timeline | None = None
    safety: SafetyPolicy | None = None  # None = SafetyPolicy(): refuse live, honour halt files
    dry_run: DryRun | None = None
    run_dir: Path | None = None  # ledger, snapshots, HALT; None = the backend's run_dir
    ledger: bool = True  # write <run_dir>/ledger.jsonl


class Params:
    """Typed reading of a fault's parameters from a ledger record (the edge where JSON comes back in)."""

    def __init__(self, values: Mapping[str, object], where: str) -> None:
        self.values = values
        self.where = where

    def _bad(self, key: str, want: str) -> FaultError:
        return FaultError(
            f"{self.where}: parameter {key!r} must be {want}, got {self.values.get(key)!r}",
            hint="the ledger line was edited or written by another harness version; revert this fault by hand",
        )

    def text(self, key: str) -> str:
        value = self.values.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.values.get(key) is None else self.text(key)

    def number(self, key: str) -> float:
        value = self.values.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        return None if self.values.get(key) is None else self.number(key)

    def integer(self, key: str) -> int:
        value = self.values.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.values.get(key) is None else self.integer(key)

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def texts(self, key: str) -> list[str]:
        value = self.values.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return [str(v) for v in value]

    def mapping(self, key: str) -> Mapping[str, object]:
        value = self.values.get(key, {})
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        return value


class FaultState(enum.Enum):
    NEW = "new"
    INJECTING = "injecting"  # inject started and did not finish: possibly half-applied
    INJECTED = "injected"
    ROLLED_BACK = "rolled_back"
    DRY = "dry"  # "injected" in a dry run: nothing was touched


class Fault(abc.ABC):
    """One failure to inject and revert. See the module docstring for the guarantees."""

    kind: ClassVar[str]
    # True when what the fault changed outlives the run's stack: files the run directory keeps (a corrupted
    # state file, restored from its snapshot), or a part of the cluster (a node cut off). Removing a dead run's
    # stack then does not revert it: clean-up rolls it back, where a fault inside the stack (a proxy, a process,
    # a pod) is only closed out in the ledger, its target being gone.
    outlives_stack: ClassVar[bool] = False

    def __init__(self, backend: Backend, *, ctx: FaultContext | None = None, fault_id: str | None = None) -> None:
        self.backend = backend
        self.ctx = ctx or FaultContext()
        self.fault_id = fault_id or f"{self.kind}-{uuid.uuid4().hex[:10]}"
        self.state = FaultState.NEW
        self.rolled_back_elsewhere = False  # another process rolled it back while this rollback failed
        self._lock = threading.RLock()

    # --- what subclasses provide -----------------------------------------------------------------

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """The thing hit, in the stack's words (``link broker``, ``service engine``)."""

    @property
    @abc.abstractmethod
    def action(self) -> str:
        """What is done, briefly (``SIGKILL``, ``500 ms latency downstream``)."""

    @property
    @abc.abstractmethod
    def expected_effect(self) -> str:
        """What the stack should show (the detection a drill expects)."""

    @abc.abstractmethod
    def params(self) -> dict[str, ParamValue]:
        """Constructor parameters, JSON-serialisable (``from_params`` reverses it)."""

    @classmethod
    @abc.abstractmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self: ...

    @abc.abstractmethod
    def _inject(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> str | None:
        """Revert; must be safe on a half-applied fault and on one already reverted. Returns what it found
        instead of the fault when the fault was no longer in place (something else undid it: a Toxiproxy
        that restarted forgets its toxics), else None: the timeline says so, since whatever the drill observed
        after that moment was not the fault's doing."""

    def learned(self) -> dict[str, ParamValue]:
        """What inject learned that rollback needs (an id, a previous value); saved in the ledger."""
        return {}

    def _restore_learned(self, learned: Params) -> None:
        """Take back what :meth:`learned` saved (used when rebuilding from a ledger record)."""
        return None

    # --- description and records -----------------------------------------------------------------

    def describe(self) -> str:
        return f"{self.kind}: {self.action} on {self.target}; expected: {self.expected_effect}"

    def record(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "module": type(self).__module__,  # so a team's own fault class is found again after a crash
            "fault_id": self.fault_id,
            "params": dict(self.params()),
            "learned": dict(self.learned()),
            "description": self.describe(),
        }

    @classmethod
    def from_record(
        cls, backend: Backend, record: Mapping[str, object], *, ctx: FaultContext | None = None
    ) -> Fault:
        """Rebuild an injected fault from its ledger record, ready to be rolled back."""
        from harness.faults.registry import FAULTS, fault_class

        top = Params(record, "ledger record")
        kind = top.text("kind")
        fault_id = top.text("fault_id")
        module = record.get("module")
        fault_cls = fault_class(kind, module if isinstance(module, str) else None)
        if fault_cls is None:
            where = f" (its module '{module}' registers no such kind)" if isinstance(module, str) else ""
            raise FaultError(
                f"ledger record {fault_id}: unknown fault kind {kind!r}{where}",
                hint=f"known kinds: {', '.join(sorted(FAULTS))}; a team's own fault class must be decorated with "
                "@register_fault and importable (its module is named in the record)",
            )
        if cls is not Fault and not issubclass(fault_cls, cls):
            raise FaultError(f"ledger record {fault_id} is a {kind}, not a {cls.__name__}")
        fault = fault_cls.from_params(
            backend, Params(top.mapping("params"), f"ledger record {fault_id}"),
            ctx=ctx or FaultContext(), fault_id=fault_id,
        )
        fault._restore_learned(Params(top.mapping("learned"), f"ledger record {fault_id}"))
        fault.state = FaultState.INJECTED
        return fault

    @property
    def run_dir(self) -> Path:
        return self.ctx.run_dir if self.ctx.run_dir is not None else Path(self.backend.run_dir)

    def _ledger(self, action: str, error: BaseException | None = None) -> None:
        if not self.ctx.ledger:
            return
        from harness.faults.ledger import Ledger

        Ledger(self.run_dir).append(action, self.record(), error=None if error is None else _one_line(error))

    def _rolled_back_in_ledger(self) -> bool:
        """The ledger's latest record of this fault says rolled back (written by another process)."""
        if not self.ctx.ledger:
            return False
        from harness.faults.ledger import rolled_back

        try:
            return rolled_back(self.run_dir, self.fault_id)
        except (OSError, DrillError):
            return False

    def _event(self, kind: EventKind, started: Stamp | None, **details: Scalar) -> None:
        timeline = self.ctx.timeline
        if timeline is not None:
            if started is not None:
                details["took_s"] = round(timeline.clock.now() - started.t, 6)
            timeline.record(kind, self.describe(), at=started, fault_id=self.fault_id, fault=self.kind,
                            target=self.target, **details)

    # --- lifecycle -------------------------------------------------------------------------------

    def inject(self) -> None:
        with self._lock:
            if self.state in (FaultState.INJECTING, FaultState.INJECTED, FaultState.DRY):
                raise FaultInjectionError(
                    f"{self.describe()}: already injected (state {self.state.value})",
                    hint="roll it back first, or create a new fault",
                )
            if self.ctx.dry_run is not None:
                self.ctx.dry_run.add(self, "inject")
                if self.ctx.timeline is not None:
                    self.ctx.timeline.note(f"dry run: would inject {self.describe()}", fault_id=self.fault_id)
                self.state = FaultState.DRY
                return
            (self.ctx.safety or SafetyPolicy()).check_inject(self.backend.stack, self.run_dir)
            try:
                self._ledger("inject")
            except OSError as exc:
                raise FaultInjectionError(
                    f"{self.describe()}: not injected: cannot write the fault ledger in {self.run_dir} "
                    f"({exc.strerror})",
                    hint="a fault that cannot be recorded cannot be cleaned up after a crash; fix the run directory",
                ) from exc
            self.state = FaultState.INJECTING
            started = self.ctx.timeline.stamp() if self.ctx.timeline is not None else None
            try:
                self._inject()
            except BaseException as exc:
                notes = self._after_failed_inject(exc)
                if not isinstance(exc, Exception):
                    for note in notes:
                        exc.add_note(note)
                    raise
                reverted = (
                    "whatever was applied has been rolled back" if self.state is FaultState.ROLLED_BACK
                    else "rolling back what was applied FAILED (see the notes below); the fault may be active"
                )
                error = FaultInjectionError(
                    f"could not inject {self.describe()}\n  observed: {_one_line(exc)}\n  {reverted}",
                    hint=exc.hint if isinstance(exc, DrillError) and exc.hint else
                    "check that the target is up (`drill stack status`) and the parameters are right",
                )
                for note in notes:
                    error.add_note(note)
                raise error from exc
            self.state = FaultState.INJECTED
            self._ledger("injected")
            self._event(EventKind.FAULT_INJECTED, started)  # placed when the inject began

    def _after_failed_inject(self, exc: BaseException) -> list[str]:
        """Record the failure and roll back what may be half-applied; returns notes for the error."""
        notes: list[str] = []
        try:
            self._ledger("inject_failed", exc)
        except OSError as ledger_exc:
            notes.append(f"also: could not record the failure in the ledger: {ledger_exc}")
        try:
            self.rollback()
        except FaultRollbackError as rb:
            notes.append(f"and rolling the half-applied fault back failed too: {rb}")
        return notes

    def rollback(self) -> None:
        with self._lock:
            if self.state is FaultState.DRY:
                assert self.ctx.dry_run is not None
                self.ctx.dry_run.add(self, "rollback")
                self.state = FaultState.ROLLED_BACK
                return
            if self.state not in (FaultState.INJECTING, FaultState.INJECTED):
                return  # never injected, or already rolled back: nothing to do
            started = self.ctx.timeline.stamp() if self.ctx.timeline is not None else None
            injected = self.state is FaultState.INJECTED
            try:
                found = self._rollback()
            except Exception as exc:
                if self._rolled_back_in_ledger():
                    # e.g. `drill halt`'s clean-up next to the live run it halts: the run rolled the fault back
                    # and stopped its stack while this rollback was under way, so the target was gone
                    self.rolled_back_elsewhere = True
                    self.state = FaultState.ROLLED_BACK
                    return
                try:
                    self._ledger("rollback_failed", exc)
                except OSError as ledger_exc:
                    exc.add_note(f"also: could not record the failure in the ledger: {ledger_exc}")
                raise FaultRollbackError(
                    f"could not roll back {self.describe()}\n  observed: {_one_line(exc)}\n"
                    f"  the fault may still be active",
                    hint=f"`drill cleanup --run-dir {self.run_dir}` retries every pending rollback; "
                    "check the target by hand if it fails again",
                ) from exc
            self.state = FaultState.ROLLED_BACK
            self._ledger("rolled_back")
            found = found if injected else None  # a half-applied fault was never wholly in place to be missed
            self._event(EventKind.FAULT_ROLLED_BACK, started, **({"found_gone": found} if found else {}))
            if found and self.ctx.timeline is not None:
                self.ctx.timeline.note(
                    f"{self.describe()} was no longer in place when it was rolled back: {found}; what the drill "
                    "observed after it went is not the fault's doing", fault_id=self.fault_id,
                )

    # --- context manager -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.inject()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.rollback()
        except FaultRollbackError as rb:
            if exc is None:
                raise
            exc.add_note(f"while handling this, the fault's rollback failed: {rb}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.fault_id} {self.state.value}: {self.action} on {self.target}>"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " | ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else :class:`InputError` naming the parameter and the choices."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_range(name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    """``value`` if it is a number in ``[lo, hi]``, else :class:`InputError` naming the parameter and range."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        unit_text = f" {unit}" if unit else ""
        raise InputError(f"{name} must be a number in [{lo:g}, {hi:g}]{unit_text}; got {value!r}")
    return value

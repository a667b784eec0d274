"""Safety rails around fault injection: live refusal, dry runs, and the halt file.

* **Live refusal**: a stack whose mode (the stack description's ``x-drill.mode``: the environment
  variable it names, e.g. ``TR_MODE``) is ``live`` is refused unless ``allow_live=True`` *and* a
  typed confirmation equal to the stack's name is given. The mode is read from every place that
  can set it (the harness' environment and each service's ``x-drill.local.env``); if **any** says
  ``live`` the stack is treated as live: with money at stake the most dangerous reading wins.
  A stack whose mode cannot be determined (no ``x-drill.mode``) is refused too: declare it.
* **Dry run**: with a :class:`DryRun` in the fault context, ``inject()``/``rollback()`` only record
  what they would do (a :class:`PlannedFault` each) and touch nothing: no backend call, no
  Toxiproxy call, no HTTP, no file, no ledger line.
* **Halt**: a file ``<run_dir>/HALT`` (or ``<runs root>/HALT`` for every scenario of a run) blocks new
  injections with :class:`~harness.errors.SafetyRefusal`; :func:`halt` writes it and reverts everything
  the run's ledger says is still injected (``drill halt``: :mod:`harness.maintenance`). Rollbacks are
  never blocked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clock import utc_now
from harness.errors import SafetyRefusal
from harness.stack import StackDescription

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.faults.base import Fault
    from harness.faults.ledger import CleanupReport

LIVE = "live"
UNKNOWN = "unknown"
HALT_FILE = "HALT"


@dataclass(frozen=True)
class StackMode:
    mode: str
    source: str  # where it was read ("environment TR_MODE", "services.traderunner.x-drill.local.env", ...)

    @property
    def is_live(self) -> bool:
        return self.mode.strip().lower() == LIVE

    @property
    def is_unknown(self) -> bool:
        return self.mode == UNKNOWN


def stack_mode(stack: StackDescription, environ: Mapping[str, str] | None = None) -> StackMode:
    """The stack's trading mode; ``live`` if any source says so (see module docstring)."""
    if stack.mode is None:
        return StackMode(UNKNOWN, "the stack description declares no x-drill.mode")
    env = os.environ if environ is None else environ
    var = stack.mode.env
    readings: list[StackMode] = []
    if var in env:
        readings.append(StackMode(env[var], f"environment {var}"))
    for spec in stack.services.values():
        if spec.local is not None and var in spec.local.env:
            readings.append(StackMode(spec.local.env[var], f"services.{spec.name}.x-drill.local.env.{var}"))
    for reading in readings:
        if reading.is_live:
            return reading
    if readings:
        return readings[0]
    return StackMode(stack.mode.default, f"x-drill.mode default ({var} unset)")


def halt_files(run_dir: Path, runs_root: Path | None = None) -> tuple[Path, ...]:
    root = runs_root if runs_root is not None else run_dir.parent
    return (run_dir / HALT_FILE, root / HALT_FILE)


@dataclass(frozen=True)
class SafetyPolicy:
    """What a run allows. The default refuses live stacks and honours halt files."""

    allow_live: bool = False
    confirmation: str | None = None
    runs_root: Path | None = None
    environ: Mapping[str, str] | None = None

    def check_live(self, stack: StackDescription) -> StackMode:
        mode = stack_mode(stack, self.environ)
        if mode.is_unknown:
            raise SafetyRefusal(
                f"refusing to inject a fault into stack '{stack.name}': its mode (lab, paper or live) cannot be "
                f"determined\n  expected: x-drill.mode in {stack.path}\n  observed: {mode.source}",
                hint="declare it in the stack file, e.g. 'x-drill: {mode: {env: APP_MODE, default: lab}}'",
            )
        if not mode.is_live:
            return mode
        if not self.allow_live:
            raise SafetyRefusal(
                f"refusing to inject a fault into stack '{stack.name}': its mode is live ({mode.source})\n"
                f"  expected: a lab or paper stack\n  observed: mode={mode.mode}",
                hint=f"drill a lab/paper stack (set {stack.mode.env if stack.mode else 'the mode'}=lab); "
                "to drill a live stack on purpose pass --allow-live to `drill run` (it asks you to type the "
                "stack's name)",
            )
        if self.confirmation != stack.name:
            raise SafetyRefusal(
                f"live stack '{stack.name}': the typed confirmation does not match\n"
                f"  expected: {stack.name!r}\n  observed: {self.confirmation!r}",
                hint=f"run again with --allow-live and type the stack's name exactly when asked: {stack.name}",
            )
        return mode

    def check_halt(self, run_dir: Path) -> None:
        for path in halt_files(run_dir, self.runs_root):
            if path.exists():
                try:
                    reason = path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    reason = f"(unreadable: {exc.strerror})"
                raise SafetyRefusal(
                    f"halt file {path} is present: new faults are blocked\n  reason: {reason or '(none given)'}",
                    hint=f"remove {path} (`drill resume`) once the halt is over; `drill cleanup` reverts faults",
                )

    def check_inject(self, stack: StackDescription, run_dir: Path) -> None:
        """Raise :class:`SafetyRefusal` unless a new fault may be injected now."""
        self.check_halt(run_dir)
        self.check_live(stack)


@dataclass(frozen=True)
class PlannedFault:
    kind: str
    target: str
    description: str
    action: str  # "inject" or "rollback"


@dataclass
class DryRun:
    """Collects what faults would do; faults given one in their context never touch anything."""

    planned: list[PlannedFault] = field(default_factory=list)

    def add(self, fault: Fault, action: str) -> PlannedFault:
        entry = PlannedFault(fault.kind, fault.target, fault.describe(), action)
        self.planned.append(entry)
        return entry

    def lines(self) -> list[str]:
        return [f"[dry-run] would {p.action}: {p.description}" for p in self.planned]


@dataclass(frozen=True)
class HaltResult:
    halt_file: Path
    cleanup: CleanupReport | None  # None when no backend was given (only the file was written)

    def summary(self) -> str:
        head = f"halt file written: {self.halt_file}"
        if self.cleanup is None:
            return head + "\n  faults were not reverted here: run `drill cleanup` with the stack"
        return head + "\n" + self.cleanup.summary()


def halt(
    run_dir: Path,
    backend: Backend | None = None,
    *,
    reason: str = "",
    everywhere: bool = False,
    runs_root: Path | None = None,
) -> HaltResult:
    """Block new faults (``<run_dir>/HALT``, or ``<runs root>/HALT`` with ``everywhere``) and revert the run's faults.

    The file is written (fsync) *before* anything is reverted, so a fault step racing the halt is
    refused. With ``backend`` the run's ledger is cleaned up (see :func:`harness.faults.ledger.cleanup`).
    """
    root = runs_root if runs_root is not None else run_dir.parent
    path = write_halt_file(root if everywhere else run_dir, reason)
    if backend is None:
        return HaltResult(path, None)
    from harness.faults.ledger import cleanup

    return HaltResult(path, cleanup(backend, run_dir))


def write_halt_file(directory: Path, reason: str = "") -> Path:
    """Write ``<directory>/HALT`` (fsync) with the time and the reason; returns its path."""
    path = directory / HALT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(f"{utc_now().isoformat(timespec='seconds')} {reason}".strip() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def clear_halt(run_dir: Path, *, everywhere: bool = False, runs_root: Path | None = None) -> Path | None:
    """Remove the halt file; returns it if there was one."""
    root = runs_root if runs_root is not None else run_dir.parent
    path = (root if everywhere else run_dir) / HALT_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    return path

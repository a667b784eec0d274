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
  never blocked. A halt raises :class:`~harness.errors.DrillHalted`: the scenario is reported
  "halted" with the reason, never as a timeout.
* **Faults watched while in place**: :class:`FaultWatch` is asked between probe attempts whether a
  halt arrived or whether a fault of this drill was reverted by someone else (another process's
  ``rolled_back`` line in the ledger: ``drill halt``, ``drill cleanup --force``; or Toxiproxy no
  longer holding the disabled proxy or the toxic: an operator, a restarted Toxiproxy). It records
  the moment on the timeline and ends the wait with :class:`~harness.errors.FaultRevertedOutside`,
  so the verdict says what happened instead of "detection missed its deadline".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clock import utc_now
from harness.errors import DrillError, DrillHalted, FaultRevertedOutside, SafetyRefusal
from harness.stack import MODES, StackDescription

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.clock import Timeline
    from harness.faults.base import Fault
    from harness.faults.ledger import CleanupReport

LIVE = "live"
UNKNOWN = "unknown"
HALT_FILE = "HALT"


@dataclass(frozen=True)
class StackMode:
    mode: str
    source: str  # where it was read ("environment TR_MODE", "services.engine.x-drill.local.env", ...)

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
        if mode.mode.strip().lower() not in MODES:  # "prod", "production", a typo: it may well be live
            raise SafetyRefusal(
                f"refusing to inject a fault into stack '{stack.name}': its mode {mode.mode!r} ({mode.source}) is "
                f"none of {', '.join(MODES)}\n  expected: lab or paper\n  observed: mode={mode.mode!r}",
                hint=f"set {stack.mode.env if stack.mode else 'the mode'}=lab (or paper) for a drill",
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
                raise DrillHalted(
                    f"halted: halt file {path} is present: new faults are blocked\n"
                    f"  reason: {reason or '(none given)'}",
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


class FaultWatch:
    """Asked between probe attempts: has a halt arrived, has a fault in place been reverted from outside?

    ``faults`` returns the drill's faults (objects with ``fault_id``, ``kind``, ``state``, ``describe()``
    and, for network faults, ``link``/``toxic_name``). Toxiproxy is asked at most every ``every_s``.
    """

    def __init__(
        self,
        backend: Backend,
        policy: SafetyPolicy,
        run_dir: Path,
        faults: Callable[[], Sequence[Fault]],
        timeline: Timeline | None = None,
        *,
        every_s: float = 0.5,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.run_dir = run_dir
        self.faults = faults
        self.timeline = timeline
        self.every_s = every_s
        self._last_network_check = 0.0
        self.reverted: dict[str, str] = {}  # fault id -> how it was noticed

    def check(self) -> None:
        """Raise :class:`DrillHalted` or :class:`FaultRevertedOutside`; otherwise return quietly."""
        self.policy.check_halt(self.run_dir)
        in_place = [f for f in self.faults() if getattr(getattr(f, "state", None), "value", "") == "injected"]
        if not in_place:
            return
        from harness.faults.ledger import NETWORK_KINDS

        found = self._ledger_reverts({f.fault_id for f in in_place})
        now = time.monotonic()
        if not found and now - self._last_network_check >= self.every_s:
            self._last_network_check = now
            found = self._toxiproxy_reverts([f for f in in_place if f.kind in NETWORK_KINDS])
        fresh = {fid: how for fid, how in found.items() if fid not in self.reverted}
        if not fresh:
            return
        self.reverted.update(fresh)
        names = {f.fault_id: f.describe() for f in in_place}
        lines = [f"{names[fid]}: {how}" for fid, how in fresh.items()]
        if self.timeline is not None:
            for line in lines:
                self.timeline.note(f"fault reverted from outside: {line}")
        self.policy.check_halt(self.run_dir)  # a halt that reverted it is reported as the halt
        raise FaultRevertedOutside(
            "a fault was reverted from outside while the drill waited on it:\n  "
            + "\n  ".join(lines)
            + "\n  expected: the fault in place until the drill restores it\n"
            "  observed: it is gone, so detection and recovery cannot be judged",
            hint="find who reverted it (an operator, `drill cleanup --force`, a restarted Toxiproxy) and run "
            "the drill again",
        )

    def _ledger_reverts(self, ids: set[str]) -> dict[str, str]:
        from harness.faults.ledger import Ledger

        found: dict[str, str] = {}
        try:
            entries = Ledger(self.run_dir).read().entries
        except DrillError:
            return found
        for entry in entries:
            if entry.fault_id in ids and entry.action == "rolled_back" and entry.pid not in (None, os.getpid()):
                found[entry.fault_id] = f"rolled back by process {entry.pid} at {entry.wall}"
        return found

    def _toxiproxy_reverts(self, faults: Sequence[Fault]) -> dict[str, str]:
        if not faults:
            return {}
        try:
            proxies = self.backend.toxiproxy.proxies()
        except DrillError as exc:
            return {f.fault_id: f"Toxiproxy does not answer ({exc.message})" for f in faults}
        found: dict[str, str] = {}
        stamp = utc_now().isoformat(timespec="milliseconds")
        for fault in faults:
            name = self.backend.link(str(getattr(fault, "link", ""))).proxy_name
            proxy = proxies.get(name)
            if proxy is None:
                found[fault.fault_id] = f"proxy {name} is gone from Toxiproxy (restarted?), noticed at {stamp}"
            elif fault.kind == "link_down" and proxy.enabled:
                found[fault.fault_id] = f"proxy {name} was enabled again, noticed at {stamp}"
            elif fault.kind == "toxic" and getattr(fault, "toxic_name", None) not in {t.name for t in proxy.toxics}:
                found[fault.fault_id] = f"toxic {getattr(fault, 'toxic_name', '?')} was removed, noticed at {stamp}"
        return found

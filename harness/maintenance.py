"""``drill cleanup``, ``drill halt`` and ``drill resume``: acting on runs without harming anyone else's drill.

Every run directory with a ``stack.json`` names its owner (pid + start time, see
:mod:`harness.backends.reaper`). That decides what may be done to it:

* **dead** (the owner is gone): cleanup stops everything it started and closes its ledger, without
  restarting anything (:func:`~harness.backends.reaper.teardown_dead_run`); halt leaves it alone.
* **live** (the owner runs): cleanup never touches it, except faults whose *injecting* process is
  gone (a helper killed mid-fault), which the owner cannot know about. ``--force --run-dir DIR``
  names a live run and, after a typed yes, reverts its faults too. Halt writes a HALT file where
  every scenario still to come in that run looks (the run's root), then reverts its faults.
* **detached** (``drill stack up``, no owner): cleanup reverts its pending faults; ``--down`` stops it.
* **finished** (down, nothing pending, nothing running): nothing, summarised in one line.

Requests go only to a Toxiproxy that holds the run's own proxies (names carry the run id), and only
the run's proxies are reset (:func:`~harness.faults.ledger.reset_run_proxies`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.backends.reaper import STATE_FILE, labelled_processes, owner_alive, read_state, teardown_dead_run
from harness.errors import DrillError, InputError
from harness.faults.ledger import CleanupReport, pending, without_what_the_run_reverted
from harness.safety import HALT_FILE, write_halt_file

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


class Liveness(enum.Enum):
    LIVE = "live"
    DEAD = "dead"
    DETACHED = "detached"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class RunRef:
    """One run directory as its ``stack.json`` describes it."""

    run_dir: Path
    run_id: str
    status: str
    owner_pid: int | None
    liveness: Liveness

    @property
    def label(self) -> str:
        return f"{self.run_dir} (run {self.run_id})"

    @property
    def finished(self) -> bool:
        """Down, with nothing pending and no process left: a long-gone run."""
        if self.status != "down" or pending(self.run_dir):
            return False
        return not (self.run_id and labelled_processes(self.run_id))

    @property
    def halt_dirs(self) -> tuple[Path, ...]:
        """Where HALT files stop this run's current *and coming* scenarios (each gets its own run dir)."""
        return (self.run_dir, self.run_dir.parent) if self.liveness is Liveness.LIVE else (self.run_dir,)


def find_runs(run_dirs: Sequence[Path], runs_root: Path) -> list[RunRef]:
    """The named run directories, or every one with a ``stack.json`` under ``runs_root``."""
    dirs = [d.resolve() for d in run_dirs] or sorted(p.parent.resolve() for p in runs_root.glob(f"**/{STATE_FILE}"))
    refs: list[RunRef] = []
    for d in dirs:
        state = read_state(d)
        if state is None:
            if not (d / STATE_FILE).exists():
                raise InputError(f"no stack was started in {d} ({STATE_FILE} missing)", hint="check --run-dir")
            refs.append(RunRef(d, "?", "?", None, Liveness.CORRUPT))
            continue
        owner = state.get("owner")
        alive = owner_alive(owner)
        liveness = Liveness.DETACHED if alive is None else (Liveness.LIVE if alive else Liveness.DEAD)
        pid = owner.get("pid") if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
        refs.append(RunRef(d, str(state.get("run_id", "?")), str(state.get("status", "?")), pid, liveness))
    return refs


@dataclass(frozen=True)
class Outcome:
    """What a maintenance command did, line by line, and the exit code it ends with."""

    lines: tuple[str, ...]
    exit_code: int


def _ledger_cleanup(ref: RunRef, *, only_orphaned: bool = False, down: bool = False) -> CleanupReport:
    from harness.backends import attach_backend
    from harness.faults.ledger import cleanup as ledger_cleanup

    backend = attach_backend(ref.run_dir)
    report = ledger_cleanup(backend, ref.run_dir, only_orphaned=only_orphaned)
    if down:
        backend.down()
    return report


def _code(report: CleanupReport) -> int:
    if not report.complete:
        return EXIT_INPUT
    return EXIT_OK if report.ok else EXIT_FAILED


def cleanup_runs(
    refs: Sequence[RunRef],
    *,
    down: bool = False,
    force: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> Outcome:
    """Clean up after runs as the module docstring says; ``confirm`` asks a person (``--force``)."""
    lines: list[str] = []
    code = EXIT_OK
    gone = 0
    for ref in refs:
        if ref.liveness is Liveness.CORRUPT:
            lines.append(f"{ref.run_dir}: {STATE_FILE} cannot be read: left alone (remove the directory by hand)")
            code = max(code, EXIT_INPUT)
        elif ref.liveness is Liveness.DEAD:
            if ref.finished:
                gone += 1
                continue
            result = teardown_dead_run(ref.run_dir)
            lines.append(result.summary())
            if result.failed:
                code = max(code, EXIT_FAILED)
        elif ref.liveness is Liveness.LIVE:
            question = f"run {ref.run_id} in {ref.run_dir} is live (drill pid {ref.owner_pid}): revert its faults now?"
            if force and confirm is not None and confirm(question):
                report = _ledger_cleanup(ref, down=down)
                lines.append(report.summary())
                code = max(code, _code(report))
                continue
            report = _ledger_cleanup(ref, only_orphaned=True)
            if report.rolled_back or report.failed or not report.complete:
                lines.append(report.summary() + "\n  (faults whose injecting process is gone; the run itself is live)")
                code = max(code, _code(report))
            lines.append(
                f"{ref.label}: live (drill pid {ref.owner_pid}): left alone"
                + ("" if force else "; `drill cleanup --force --run-dir DIR` to revert its faults anyway")
            )
        else:  # detached: a stack started by hand
            if ref.finished:
                gone += 1
                continue
            report = _ledger_cleanup(ref, down=down)
            lines.append(report.summary() + ("\n  stack stopped" if down else ""))
            code = max(code, _code(report))
    if gone:
        lines.append(f"{gone} finished run(s): nothing left behind")
    if not refs:
        lines.append("nothing to clean up: no run directories with a stack")
    return Outcome(tuple(lines), code)


def halt_runs(refs: Sequence[RunRef], *, reason: str) -> Outcome:
    """Halt every live run (and every detached stack that is up): HALT file first, then revert its faults.

    Finished and dead runs get no HALT file.
    """
    lines: list[str] = []
    code = EXIT_OK
    written: set[Path] = set()
    halted = 0
    for ref in refs:
        if ref.liveness is Liveness.LIVE or (ref.liveness is Liveness.DETACHED and ref.status == "up"):
            for directory in ref.halt_dirs:
                if directory not in written:
                    path = write_halt_file(directory, reason)
                    written.add(directory)
                    lines.append(f"halt file written: {path} (no new fault: {reason or 'no reason given'})")
            halted += 1
            # the run sees the HALT file and rolls its faults back too, racing this: what it reverted is done
            try:
                report = without_what_the_run_reverted(_ledger_cleanup(ref))
            except DrillError as exc:
                if not pending(ref.run_dir):
                    lines.append(f"{ref.label}: the run reverted its faults itself ({exc.message})")
                    continue
                lines.append(f"{ref.label}: could not revert its faults: {exc.message}")
                code = max(code, exc.exit_code)
                continue
            lines.append(report.summary())
            code = max(code, _code(report))
    if not halted:
        lines.append("no live run: nothing to halt (finished runs are left as they are)")
    return Outcome(tuple(lines), code)


def resume_runs(refs: Sequence[RunRef]) -> Outcome:
    """Remove the HALT files a halt wrote for these runs (in the run directory and its run root)."""
    lines: list[str] = []
    seen: set[Path] = set()
    for ref in refs:
        for path in (ref.run_dir / HALT_FILE, ref.run_dir.parent / HALT_FILE):
            if path in seen:
                continue
            seen.add(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            lines.append(f"removed {path}")
    return Outcome(tuple(lines), EXIT_OK)

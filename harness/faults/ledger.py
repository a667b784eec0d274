"""The fault ledger: every inject and rollback appended (fsync) to ``<run_dir>/ledger.jsonl``.

One JSON object per line: ``{"seq", "wall", "pid", "action", "fault_id", "kind", "record", "error"}``
with ``action`` one of ``inject`` (written *before* the fault is applied), ``injected``,
``inject_failed``, ``rolled_back``, ``rollback_failed``. ``record`` is the fault's
:meth:`~harness.faults.base.Fault.record` at that moment (it carries what inject learned).

:func:`pending` lists faults whose last line is not ``rolled_back``; :func:`cleanup` resets
Toxiproxy, rebuilds each pending fault from its record and rolls it back (latest first), and
reports what it did. A line cut short by a crash is skipped and reported, never fatal.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clock import utc_now
from harness.errors import DrillError, FaultRollbackError

if TYPE_CHECKING:
    from harness.backends.base import Backend

LEDGER_FILE = "ledger.jsonl"
ACTIONS = ("inject", "injected", "inject_failed", "rolled_back", "rollback_failed")


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    action: str
    fault_id: str
    kind: str
    record: Mapping[str, object]
    wall: str
    error: str | None = None

    @property
    def description(self) -> str:
        return str(self.record.get("description", f"{self.kind} {self.fault_id}"))


@dataclass(frozen=True)
class LedgerContents:
    entries: tuple[LedgerEntry, ...]
    bad_lines: tuple[int, ...]  # 1-based line numbers that could not be parsed


class Ledger:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER_FILE

    def append(self, action: str, record: Mapping[str, object], *, error: str | None = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown ledger action {action!r}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            prefix = b""
            if size:
                # a crash may have cut the last line short: never glue a new line onto it
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        prefix = b"\n"
            line = {
                "seq": _next_seq(self.path),
                "wall": utc_now().isoformat(timespec="milliseconds"),
                "pid": os.getpid(),
                "action": action,
                "fault_id": str(record.get("fault_id", "")),
                "kind": str(record.get("kind", "")),
                "record": dict(record),
                "error": error,
            }
            os.write(fd, prefix + json.dumps(line, sort_keys=True).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock

    def read(self) -> LedgerContents:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return LedgerContents((), ())
        entries: list[LedgerEntry] = []
        bad: list[int] = []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                record = doc["record"]
                if not isinstance(record, dict) or doc["action"] not in ACTIONS:
                    raise ValueError("bad record")
                entries.append(
                    LedgerEntry(
                        seq=int(doc.get("seq", number)),
                        action=str(doc["action"]),
                        fault_id=str(doc["fault_id"]),
                        kind=str(doc["kind"]),
                        record=record,
                        wall=str(doc.get("wall", "")),
                        error=doc.get("error"),
                    )
                )
            except (ValueError, KeyError, TypeError):
                bad.append(number)
        return LedgerContents(tuple(entries), tuple(bad))


def _next_seq(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh) + 1
    except FileNotFoundError:
        return 1


def pending(run_dir: Path) -> tuple[LedgerEntry, ...]:
    """Faults injected (or half-injected) and not rolled back, in injection order (latest record each)."""
    latest: dict[str, LedgerEntry] = {}
    order: list[str] = []
    for entry in Ledger(run_dir).read().entries:
        if entry.fault_id not in latest:
            order.append(entry.fault_id)
        latest[entry.fault_id] = entry
    return tuple(latest[f] for f in order if latest[f].action != "rolled_back")


@dataclass(frozen=True)
class CleanupReport:
    run_dir: Path
    rolled_back: tuple[str, ...]  # descriptions of faults reverted
    failed: tuple[tuple[str, str], ...]  # (description, error)
    toxiproxy: str  # what happened to Toxiproxy
    bad_lines: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"cleanup of {self.run_dir}:", f"  toxiproxy: {self.toxiproxy}"]
        if not self.rolled_back and not self.failed:
            lines.append("  no pending faults in the ledger")
        lines += [f"  rolled back: {d}" for d in self.rolled_back]
        lines += [f"  FAILED: {d}\n    {e}" for d, e in self.failed]
        if self.bad_lines:
            lines.append(f"  unreadable ledger lines (skipped): {', '.join(map(str, self.bad_lines))}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.failed:
            raise FaultRollbackError(
                self.summary(),
                hint="fix what the errors name, then run `drill cleanup` again (it retries only what is pending)",
            )


def cleanup(backend: Backend, run_dir: Path, *, reset_toxiproxy: bool = True) -> CleanupReport:
    """Revert every pending fault of ``run_dir``: Toxiproxy ``/reset`` first, then each fault, latest first.

    Each rollback is attempted even if an earlier one failed; failures are collected in the report
    (call :meth:`CleanupReport.raise_if_failed` to turn them into an error).
    """
    from harness.faults.base import Fault, FaultContext

    contents = Ledger(run_dir).read()
    todo = pending(run_dir)
    failed: list[tuple[str, str]] = []
    toxiproxy_note = "not reset (not asked to)"
    if reset_toxiproxy:
        try:
            backend.toxiproxy.reset()
            toxiproxy_note = "reset (every proxy enabled, every toxic removed)"
        except DrillError as exc:
            toxiproxy_note = f"could not reset: {exc.message}"
            if any(e.kind in ("link_down", "toxic") for e in todo):
                failed.append(("toxiproxy reset", str(exc)))
    ctx = FaultContext(run_dir=run_dir)
    rolled: list[str] = []
    for entry in reversed(todo):
        try:
            fault = Fault.from_record(backend, entry.record, ctx=ctx)
            fault.rollback()
        except DrillError as exc:
            failed.append((entry.description, str(exc)))
        else:
            rolled.append(entry.description)
    return CleanupReport(Path(run_dir), tuple(rolled), tuple(failed), toxiproxy_note, contents.bad_lines)

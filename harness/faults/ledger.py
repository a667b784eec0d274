"""The fault ledger: every inject and rollback appended (fsync) to ``<run_dir>/ledger.jsonl``.

One JSON object per line: ``{"seq", "wall", "pid", "pid_start", "action", "fault_id", "kind", "record", "error"}``
with ``action`` one of ``inject`` (written *before* the fault is applied), ``injected``,
``inject_failed``, ``rolled_back``, ``rollback_failed``. ``record`` is the fault's
:meth:`~harness.faults.base.Fault.record` at that moment (it carries what inject learned).

:func:`pending` lists faults whose last line is not ``rolled_back``; :func:`cleanup` resets the
run's own Toxiproxy proxies (only after checking that the server holds them: proxy names carry the
run id), rebuilds each pending fault from its record and rolls it back (latest first), and reports
what it did. A line cut short by a crash is skipped and reported; since it may name a fault still
in place, the report is then not ``complete`` and ``drill cleanup`` exits 2 naming the line.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clock import utc_now
from harness.errors import DrillError, FaultRollbackError, InputError, ToxiproxyError

if TYPE_CHECKING:
    from harness.backends.base import Backend
    from harness.toxiproxy import Proxy

LEDGER_FILE = "ledger.jsonl"
ACTIONS = ("inject", "injected", "inject_failed", "rolled_back", "rollback_failed")
NETWORK_KINDS = frozenset({"link_down", "toxic"})  # faults that live in the run's Toxiproxy
TOXIPROXY_RESET = "toxiproxy reset"  # the failure entry of a reset that could not be done


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    action: str
    fault_id: str
    kind: str
    record: Mapping[str, object]
    wall: str
    error: str | None = None

    pid: int | None = None  # the process that wrote the line (the injector)
    pid_start: str | None = None  # its start time, so a recycled pid is not taken for it

    @property
    def description(self) -> str:
        return str(self.record.get("description", f"{self.kind} {self.fault_id}"))

    @property
    def writer_alive(self) -> bool:
        """The process that wrote this line still runs (False when unknown: an old ledger)."""
        from harness.backends.reaper import owner_alive

        return bool(owner_alive({"pid": self.pid, "start": self.pid_start}))


@dataclass(frozen=True)
class LedgerContents:
    entries: tuple[LedgerEntry, ...]
    bad_lines: tuple[int, ...]  # 1-based line numbers that could not be parsed
    bad_text: tuple[str, ...] = ()  # the start of each of those lines, to name what they held


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
                "pid_start": _own_start(),
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
        except OSError as exc:
            raise InputError(
                f"cannot read the fault ledger {self.path}: {exc.strerror}\n"
                "  expected: a readable ledger.jsonl\n  observed: every fault of this run is unknown",
                hint="fix the file's permissions, then run `drill cleanup` again: nothing was reverted",
            ) from exc
        entries: list[LedgerEntry] = []
        bad: list[int] = []
        bad_text: list[str] = []
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
                        pid=doc["pid"] if isinstance(doc.get("pid"), int) else None,
                        pid_start=str(doc["pid_start"]) if doc.get("pid_start") is not None else None,
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(number)
                bad_text.append(line[:120].decode("utf-8", errors="replace"))
        return LedgerContents(tuple(entries), tuple(bad), tuple(bad_text))


def _own_start() -> str | None:
    from harness.backends.reaper import proc_start

    return proc_start(os.getpid())


def _next_seq(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh) + 1
    except FileNotFoundError:
        return 1


def latest_records(run_dir: Path) -> dict[str, LedgerEntry]:
    """Each fault's latest record, in injection order (a dict keeps the order keys were first set in)."""
    latest: dict[str, LedgerEntry] = {}
    for entry in Ledger(run_dir).read().entries:
        latest[entry.fault_id] = entry
    return latest


def pending(run_dir: Path) -> tuple[LedgerEntry, ...]:
    """Faults injected (or half-injected) and not rolled back, in injection order (latest record each)."""
    return tuple(e for e in latest_records(run_dir).values() if e.action != "rolled_back")


def rolled_back(run_dir: Path, fault_id: str) -> bool:
    """The ledger's latest record of ``fault_id`` says rolled back (by this process or another one)."""
    latest = latest_records(run_dir).get(fault_id)
    return latest is not None and latest.action == "rolled_back"


@dataclass(frozen=True)
class CleanupReport:
    run_dir: Path
    rolled_back: tuple[str, ...]  # descriptions of faults reverted
    failed: tuple[tuple[str, str], ...]  # (description, error)
    toxiproxy: str  # what happened to Toxiproxy
    bad_lines: tuple[int, ...]
    bad_text: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every line of the ledger was read: nothing unknown may still be in place."""
        return not self.bad_lines

    @property
    def ok(self) -> bool:
        return not self.failed and self.complete

    def summary(self) -> str:
        lines = [f"cleanup of {self.run_dir}:", f"  toxiproxy: {self.toxiproxy}"]
        if not self.rolled_back and not self.failed:
            lines.append("  no pending faults in the ledger")
        lines += [f"  rolled back: {d}" for d in self.rolled_back]
        lines += [f"  FAILED: {d}\n    {e}" for d, e in self.failed]
        for number, text in zip(self.bad_lines, self.bad_text or ("",) * len(self.bad_lines), strict=True):
            lines.append(f"  NOT REVERTED: {LEDGER_FILE} line {number} cannot be read: {text!r}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.bad_lines:
            raise InputError(
                self.summary(),
                hint=f"the unreadable line(s) of {self.run_dir / LEDGER_FILE} may name a fault still in place: "
                "revert it by hand (`drill stack down` stops the stack), then fix or remove the line(s)",
            )
        if self.failed:
            raise FaultRollbackError(
                self.summary(),
                hint="fix what the errors name, then run `drill cleanup` again (it retries only what is pending)",
            )


BY_THE_RUN = "(by the run itself)"


def without_what_the_run_reverted(report: CleanupReport) -> CleanupReport:
    """``report`` with the failures that no longer matter: faults the run has since rolled back itself.

    A halt reverts a *live* run's faults while that run, having seen the HALT file, rolls them back too
    and stops its stack: the halt's rollback may then find the run's Toxiproxy already gone. A failure
    stays a failure only while the ledger still lists its fault as pending (and the Toxiproxy reset only
    while a network fault is pending); the others are reported as rolled back by the run itself.
    """
    if not report.failed:
        return report
    todo = pending(report.run_dir)
    still = {e.description for e in todo}
    network_pending = any(e.kind in NETWORK_KINDS for e in todo)
    kept: list[tuple[str, str]] = []
    by_run: list[str] = []
    for description, error in report.failed:
        if description in still or (description == TOXIPROXY_RESET and network_pending):
            kept.append((description, error))
        elif description != TOXIPROXY_RESET:
            by_run.append(f"{description} {BY_THE_RUN}")
    toxiproxy = report.toxiproxy
    if any(d == TOXIPROXY_RESET for d, _ in report.failed) and not network_pending:
        toxiproxy = f"not needed: the run reverted its network faults itself ({report.toxiproxy})"
    return dataclasses.replace(
        report, rolled_back=report.rolled_back + tuple(by_run), failed=tuple(kept), toxiproxy=toxiproxy
    )


def verified_proxies(backend: Backend) -> dict[str, Proxy]:
    """The Toxiproxy's proxies, after checking (one read-only listing) that it holds this run's own.

    Raises :class:`ToxiproxyError` when it holds none of them: the server on that port is not the run's.
    """
    names = {link.proxy_name for link in (getattr(backend, "links", {}) or {}).values()}
    proxy = backend.toxiproxy
    found = proxy.proxies()
    if names and not names & set(found):
        raise ToxiproxyError(
            f"the Toxiproxy at {proxy.host}:{proxy.port} holds none of this run's proxies "
            f"({', '.join(sorted(names))}): it is not this run's, nothing was sent to it",
            hint="the run's stack is gone; `drill cleanup` stops the stacks of dead runs",
        )
    return found


def reset_run_proxies(backend: Backend) -> str:
    """Enable the run's own proxies and remove their toxics, after checking the server holds them.

    A run's proxies are named ``<run id>-<link>``; a Toxiproxy that holds none of the run's links is
    someone else's, and nothing but the one read-only listing is sent to it. Other runs' proxies
    on a shared server are never touched. Returns what was done, for the report.
    """
    links = getattr(backend, "links", {}) or {}
    if not links:
        return "nothing to reset (the run has no links)"
    proxy = backend.toxiproxy
    names = {link.proxy_name for link in links.values()}
    found = verified_proxies(backend)
    changed = 0
    for name in sorted(names & set(found)):
        for toxic in found[name].toxics:
            proxy.remove_toxic(name, toxic.name)
            changed += 1
        if not found[name].enabled:
            proxy.set_enabled(name, True)
            changed += 1
    return f"the run's {len(names & set(found))} proxies reset ({changed} change(s)); other proxies untouched"


def cleanup(
    backend: Backend, run_dir: Path, *, reset_toxiproxy: bool = True, only_orphaned: bool = False
) -> CleanupReport:
    """Revert every pending fault of ``run_dir``: the run's Toxiproxy proxies first, then each fault, latest first.

    With ``only_orphaned`` (a run whose owner is alive) only faults whose injecting process is gone
    are reverted, and Toxiproxy is not reset: the owner's own faults are its business.
    Each rollback is attempted even if an earlier one failed; failures are collected in the report
    (call :meth:`CleanupReport.raise_if_failed` to turn them into an error).
    """
    from harness.faults.base import Fault, FaultContext

    contents = Ledger(run_dir).read()
    todo = pending(run_dir)
    if only_orphaned:
        todo = tuple(e for e in todo if not e.writer_alive)
        reset_toxiproxy = False
    failed: list[tuple[str, str]] = []
    toxiproxy_note = "not reset (not asked to)" if not only_orphaned else "not reset (the run is live)"
    unverified: DrillError | None = None  # why the Toxiproxy on that port may not be the run's
    if reset_toxiproxy:
        try:
            toxiproxy_note = reset_run_proxies(backend)
        except DrillError as exc:
            toxiproxy_note = f"could not reset: {exc.message}"
            unverified = exc
            if any(e.kind in NETWORK_KINDS for e in todo):
                failed.append((TOXIPROXY_RESET, str(exc)))
    elif any(e.kind in NETWORK_KINDS for e in todo):
        try:
            verified_proxies(backend)
        except DrillError as exc:
            unverified = exc
    if unverified is not None:  # never send a rollback to a Toxiproxy that is not (known to be) the run's
        failed += [(e.description, str(unverified)) for e in todo if e.kind in NETWORK_KINDS]
        todo = tuple(e for e in todo if e.kind not in NETWORK_KINDS)
    ctx = FaultContext(run_dir=run_dir)
    rolled: list[str] = []
    for entry in reversed(todo):
        # a halted run unwinds next to its halt's clean-up: what it rolled back since is its own doing
        if rolled_back(run_dir, entry.fault_id):
            rolled.append(f"{entry.description} {BY_THE_RUN}")
            continue
        try:
            fault = Fault.from_record(backend, entry.record, ctx=ctx)
            fault.rollback()
        except DrillError as exc:
            failed.append((entry.description, str(exc)))
        else:
            rolled.append(f"{entry.description} {BY_THE_RUN}" if fault.rolled_back_elsewhere else entry.description)
    return CleanupReport(
        Path(run_dir), tuple(rolled), tuple(failed), toxiproxy_note, contents.bad_lines, contents.bad_text
    )

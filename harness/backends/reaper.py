"""The reaper: a run's stack never outlives the drill process that owns it (as testcontainers' Ryuk).

When a backend starts a stack for a drill (not a detached ``drill stack up``), it starts a small
watcher process, ``python -m harness.backends.reaper``, in a Unix session of its own (so killing the
drill's process group does not reach it) and keeps the write end of a pipe whose read end only the
watcher holds. The kernel closes that write end when the owner dies, *however* it dies (SIGKILL
included), and the watcher then tears the run down:

* **process backend**: every process that carries the run's label (``DRILL_RUN_ID=<run id>`` in its
  environment, which every service, its children and the run's Toxiproxy inherit) and every process
  group recorded in ``stack.json`` (pid *and* start time must match, against pid reuse) gets SIGCONT,
  SIGTERM, then SIGKILL after a grace period. The run's own Toxiproxy dies with it, and with it
  every toxic; nothing is sent to any port.
* **docker backend**: every container, network and volume labelled with the run's compose project.
* **the ledger**: faults whose target was a process of the run are closed out ("removed with the
  stack"); file faults are restored from their snapshot. ``stack.json`` is marked ``down``.

A normal ``down()`` releases the watcher (one byte on the pipe): it exits without touching anything.
The watcher also checks the owner's pid *and start time* once a second, in case the pipe's write end
leaked into a forked child. ``drill cleanup`` uses :func:`teardown_dead_run` for runs whose owner is
gone (a watcher killed together with its owner, a machine reboot).

Ownership (:func:`owner_record`, :func:`owner_alive`) is the pid plus its start time from
``/proc/<pid>/stat``, so a recycled pid is never mistaken for the owner.

The watcher runs this file as a script (not ``-m``, which would import the whole ``harness.backends``
package first) and imports only the standard library at the top: it starts in a few tens of
milliseconds per stack. The harness is imported only when there is a run to tear down.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    del sys.path[0]  # run as a script: harness/backends/docker.py must never shadow the docker SDK

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
RUN_LABEL = "DRILL_RUN_ID"
REAPER_LOG = "reaper.log"


# --- ownership ------------------------------------------------------------------------------------


def proc_start(pid: int) -> str | None:
    """The process' start time (clock ticks since boot, field 22 of /proc/<pid>/stat), None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def owner_record(pid: int | None = None) -> dict[str, Any]:
    """Who owns a run: this process (or ``pid``), identified so that pid reuse cannot fool anyone."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start": proc_start(pid)}


def owner_alive(owner: object) -> bool | None:
    """True/False for a recorded owner; None when there is none (a detached stack, or an old state file)."""
    if not isinstance(owner, Mapping) or not isinstance(owner.get("pid"), int) or owner["pid"] <= 0:
        return None
    start = proc_start(int(owner["pid"]))
    if start is None:
        return False
    recorded = owner.get("start")
    return recorded is None or str(recorded) == start


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """``stack.json`` as a dict, or None when it is missing or unreadable."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- finding and stopping a run's processes --------------------------------------------------------------


def labelled_processes(run_id: str, *, exclude: Iterable[int] = (), settle: float = 0.2) -> list[int]:
    """Pids of processes whose environment carries ``DRILL_RUN_ID=<run_id>`` (the run's label).

    A process in the middle of ``execve`` reads as an *empty* environment: the kernel has already closed
    the parent's close-on-exec pipe (so ``Popen`` has returned) but not yet set up the new image's
    environment. Such processes are read again, together, for at most ``settle`` seconds, so a scan never
    misses a run's process just because it was being exec'd. Kernel threads and zombies (never an
    environment) are not waited for; a process whose environment really is empty (``env -i``) costs one
    ``settle`` per scan at most.
    """
    needle = f"{RUN_LABEL}={run_id}".encode()
    skip = {os.getpid(), *exclude}
    found: list[int] = []
    empty: list[int] = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) not in skip:
            _sort_by_label(int(entry.name), needle, found, empty)
    deadline = time.monotonic() + settle
    while empty and time.monotonic() < deadline:
        time.sleep(0.005)
        waiting, empty = empty, []
        for pid in waiting:
            _sort_by_label(pid, needle, found, empty)
    return found


_PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread


def _sort_by_label(pid: int, needle: bytes, found: list[int], empty: list[int]) -> None:
    """Append ``pid`` to ``found`` if it carries the label, to ``empty`` if it may be mid-execve."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return  # gone, or not ours to read
    if environ:
        if needle in environ.split(b"\0") and proc_start(pid) is not None:
            found.append(pid)
    elif _may_be_execing(pid):
        empty.append(pid)


def _may_be_execing(pid: int) -> bool:
    """False for kernel threads and zombies (an empty environment for good), and for a process gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    fields = raw[raw.rfind(")") + 2 :].split()
    return len(fields) > 6 and fields[0] not in ("Z", "X") and not int(fields[6]) & _PF_KTHREAD


def recorded_groups(state: Mapping[str, Any]) -> list[int]:
    """Process groups named in a process-backend ``stack.json`` whose leader is still the same process."""
    groups: list[int] = []
    services = state.get("services")
    if not isinstance(services, Mapping):
        return groups
    for rec in services.values():
        if not isinstance(rec, Mapping) or not isinstance(rec.get("pid"), int):
            continue
        start = proc_start(rec["pid"])
        if start is not None and (rec.get("start_time") is None or str(rec["start_time"]) == start):
            groups.append(rec["pid"])
    return groups


def _signal_all(pids: Iterable[int], groups: Iterable[int], sig: signal.Signals) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_run_processes(run_id: str, state: Mapping[str, Any] | None = None, *, grace: float = 3.0) -> int:
    """Stop every process of the run (SIGCONT, SIGTERM, SIGKILL after ``grace``); how many there were."""
    groups = recorded_groups(state or {})
    pids = labelled_processes(run_id)
    total = len(set(pids) | set(groups))
    if not total:
        return 0
    _signal_all(pids, groups, signal.SIGCONT)  # a frozen (paused) process cannot act on SIGTERM
    _signal_all(pids, groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        pids = labelled_processes(run_id)
        groups = recorded_groups(state or {})
        if not pids and not groups:
            return total
        time.sleep(0.05)
    for _ in range(50):  # SIGKILL until nothing of the run is left (a dying parent may still fork)
        pids = labelled_processes(run_id)
        groups = recorded_groups(state or {})
        if not pids and not groups:
            break
        total = max(total, len(set(pids) | set(groups)))
        _signal_all(pids, groups, signal.SIGKILL)
        time.sleep(0.05)
    return total


# --- tearing a dead run down ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Teardown:
    """What tearing down a dead run did."""

    run_dir: Path
    run_id: str
    processes: int  # processes stopped (process backend)
    removed: tuple[str, ...]  # containers, networks, volumes removed (docker backend)
    closed: tuple[str, ...]  # ledger faults closed out with the stack
    restored: tuple[str, ...]  # faults that outlive the stack, rolled back (settle_ledger)
    failed: tuple[tuple[str, str], ...]  # (what, error)

    @property
    def did_something(self) -> bool:
        return bool(self.processes or self.removed or self.closed or self.restored or self.failed)

    def summary(self) -> str:
        parts = []
        if self.processes:
            parts.append(f"{self.processes} process(es) stopped")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.restored:
            parts.append(f"restored {', '.join(self.restored)}")
        if self.closed:
            parts.append(f"{len(self.closed)} fault(s) gone with the stack")
        parts += [f"FAILED {what}: {err}" for what, err in self.failed]
        return f"{self.run_dir}: its drill process is gone: " + ("; ".join(parts) or "nothing was left")


def teardown_dead_run(run_dir: Path, *, grace: float = 3.0, run_id: str | None = None) -> Teardown:
    """Stop everything a run whose owner is gone started, close its ledger and mark it ``down``.

    Never contacts a port: processes are found by their run label, containers by their labels.
    ``run_id`` is used when ``stack.json`` was never written (the owner died while starting the stack).
    """
    run_dir = Path(run_dir).resolve()
    state = read_state(run_dir) or {}
    run_id = str(state.get("run_id") or run_id or "")
    failed: list[tuple[str, str]] = []
    processes = 0
    removed: tuple[str, ...] = ()
    if state.get("backend", "process") == "docker":
        if run_id:  # a `docker compose up` the owner left running would recreate what is removed
            stop_run_processes(run_id, None, grace=grace)
        try:
            removed = _remove_docker_run(str(state.get("project") or ""))
        except Exception as exc:  # the engine may be gone too; say so, never hide it  # noqa: BLE001
            failed.append(("docker containers", str(exc)))
    elif run_id:
        processes = stop_run_processes(run_id, state, grace=grace)
    settled = settle_ledger(run_dir)
    failed += settled.failed
    restored, closed = settled.restored, settled.closed
    if state and state.get("status") != "down":
        state["status"] = "down"
        state["reaped"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        tmp = run_dir / f"{STATE_FILE}.reaper.tmp"
        try:
            tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
            tmp.replace(run_dir / STATE_FILE)
        except OSError as exc:
            failed.append((str(run_dir / STATE_FILE), exc.strerror or str(exc)))
    return Teardown(run_dir, run_id, processes, removed, tuple(closed), tuple(restored), tuple(failed))


def _remove_docker_run(project: str) -> tuple[str, ...]:
    if not project:
        return ()
    from harness.backends.docker import docker_client, remove_project

    client = docker_client()
    try:
        return tuple(remove_project(client, project))
    finally:
        client.close()


@dataclass(frozen=True)
class Settled:
    """What :func:`settle_ledger` did with a dead run's pending faults."""

    restored: tuple[str, ...]  # rolled back: what they changed outlives the stack (files, a cluster's node)
    closed: tuple[str, ...]  # closed out: their target went with the stack
    failed: tuple[tuple[str, str], ...]  # (fault, why) rollbacks that failed; still pending in the ledger

    def lines(self, run_dir: str | Path) -> list[str]:
        """What a reaper prints: the rollbacks and their failures (closing out needs no word)."""
        notes = [f"{run_dir}: rolled back (it outlives the stack): {what}" for what in self.restored]
        notes += [f"{run_dir}: FAILED to roll back {what}: {why} (still pending: run `drill cleanup` again)"
                  for what, why in self.failed]
        return notes


def outlives_stack(record: Mapping[str, object]) -> bool:
    """Whether the recorded fault changed something removing the run's stack does not revert
    (:attr:`harness.faults.base.Fault.outlives_stack`)."""
    from harness.errors import DrillError
    from harness.faults.registry import fault_class

    module = record.get("module")
    try:
        cls = fault_class(str(record.get("kind", "")), module if isinstance(module, str) else None)
    except DrillError:
        return False  # its class cannot be loaded, so neither could its rollback run: closed out as before
    return bool(cls is not None and cls.outlives_stack)


def settle_ledger(run_dir: Path) -> Settled:
    """A dead run's pending faults, newest first: roll back those that outlive its stack (a file restored from
    its snapshot, a lost node brought back) through a backend attached from ``stack.json``; close out the rest
    (their target is gone with the stack). A rollback that fails stays pending, so a later clean-up retries."""
    from harness.errors import DrillError
    from harness.faults.ledger import Ledger, pending

    restored: list[str] = []
    closed: list[str] = []
    failed: list[tuple[str, str]] = []
    todo = pending(run_dir)
    if not todo:
        return Settled((), (), ())
    ledger = Ledger(run_dir)
    for entry in reversed(todo):
        if outlives_stack(entry.record):
            try:
                _rollback_detached(run_dir, entry.record)
            except (DrillError, OSError, ValueError) as exc:
                failed.append((entry.description, str(exc)))
                continue
            restored.append(entry.description)
            continue
        ledger.append("rolled_back", entry.record, error="removed with the stack: its drill process was gone")
        closed.append(entry.description)
    return Settled(tuple(restored), tuple(closed), tuple(failed))


def _rollback_detached(run_dir: Path, record: Mapping[str, object]) -> None:
    from harness.backends import attach_backend
    from harness.faults.base import Fault, FaultContext

    backend = attach_backend(run_dir)  # from stack.json; the stack itself may be gone
    Fault.from_record(backend, record, ctx=FaultContext(run_dir=run_dir)).rollback()


# --- the watcher process and its handle in the owner ------------------------------------------------------


class ReaperHandle:
    """Held by the owner of a run: keeps the watcher's pipe open; :meth:`release` lets the watcher go."""

    def __init__(self, run_dir: Path, run_id: str, *, grace: float = 3.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.run_id = run_id
        read_end, self._write_end = os.pipe()  # both non-inheritable (PEP 446): no service gets a copy
        env = {k: v for k, v in os.environ.items() if k != RUN_LABEL}  # the watcher is not part of the run
        self.run_dir.mkdir(parents=True, exist_ok=True)
        owner = owner_record()
        with open(self.run_dir / REAPER_LOG, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, __file__,
                    "--run-dir", str(self.run_dir), "--run-id", run_id, "--fd", str(read_end),
                    "--owner-pid", str(owner["pid"]), "--owner-start", str(owner["start"]),
                    "--grace", str(grace),
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                pass_fds=(read_end,), start_new_session=True,
            )  # fmt: skip
        os.close(read_end)

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        """The owner brought the stack down itself: the watcher exits without touching anything."""
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"released\n")
        os.close(self._write_end)
        self._write_end = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5.0)

    def __del__(self) -> None:  # pragma: no cover - only when an owner forgets to release
        if getattr(self, "_write_end", -1) >= 0:
            with contextlib.suppress(OSError):
                os.close(self._write_end)


def start_reaper(run_dir: Path, run_id: str) -> ReaperHandle:
    return ReaperHandle(run_dir, run_id)


def watch(fd: int, owner: Mapping[str, Any], *, poll_s: float = 1.0) -> bool:
    """Block until the owner releases (False) or dies (True): pipe EOF, or its pid/start time gone."""
    while True:
        ready, _, _ = select.select([fd], [], [], poll_s)
        if ready:
            data = os.read(fd, 64)
            return not data  # EOF: the kernel closed the owner's end, the owner is dead
        if owner_alive(owner) is False:
            return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reaper", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--owner-pid", type=int, required=True)
    parser.add_argument("--owner-start", default=None)
    parser.add_argument("--grace", type=float, default=3.0)
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the owner, not the watcher
    owner = {"pid": args.owner_pid, "start": None if args.owner_start == "None" else args.owner_start}
    if not watch(args.fd, owner):
        return 0
    started = time.monotonic()
    state = read_state(args.run_dir) or {}
    if state.get("run_id") not in (None, args.run_id):
        print(f"reaper: {args.run_dir} now belongs to run {state.get('run_id')}, not {args.run_id}: untouched")
        return 0
    result = teardown_dead_run(args.run_dir, grace=args.grace, run_id=args.run_id)
    print(f"{time.strftime('%H:%M:%S')} reaper: {result.summary()} ({time.monotonic() - started:.2f}s)", flush=True)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Teardown time after SIGKILL: how long a killed drill's stack outlives it (issue 11: "within seconds").

Run: flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_reaper.py [--rounds 5] [--fault]

Each round starts a stack on the process backend in a child process that owns it (as `drill run`
does), optionally injects a link-down fault, then SIGKILLs that child alone (not its group) and
measures the time until no process of the run and no port of the stack is left. Prints every round
and p50/max. Nobody runs `drill cleanup`: the reaper does the work.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harness.backends.reaper import labelled_processes

ROOT = Path(__file__).resolve().parents[1]

OWNER = """
import sys, time
from pathlib import Path
from harness.backends.process import ProcessBackend
from harness.stack import load_stack
b = ProcessBackend(load_stack(Path(sys.argv[1])), Path(sys.argv[2]), run_id=sys.argv[3])
b.up()
if sys.argv[4] == "fault":
    from harness.faults.base import FaultContext
    from harness.faults.network import LinkDown
    LinkDown(b, next(iter(b.stack.links)), ctx=FaultContext(run_dir=b.run_dir)).inject()
print(" ".join(str(p) for p in b.ports.values()), flush=True)
time.sleep(3600)
"""


def listening(ports: list[int]) -> list[int]:
    """The given loopback TCP ports that something still listens on (from /proc/net/tcp, no connection made)."""
    wanted = {f"{p:04X}" for p in ports}
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = fields[1].rsplit(":", 1)[1]
            if fields[3] == "0A" and port in wanted:  # 0A = LISTEN
                found.add(int(port, 16))
    return sorted(found)


def one_round(stack_file: Path, fault: bool) -> tuple[float, int]:
    """(seconds from SIGKILL until nothing of the run is left, processes the run had)."""
    with tempfile.TemporaryDirectory(prefix="bench-reaper-") as tmp:
        run_id = f"drill-bench-{uuid.uuid4().hex[:8]}"
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(stack_file), str(Path(tmp) / "run"), run_id, "fault" if fault else "-"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert owner.stdout is not None
        line = owner.stdout.readline()
        if not line.strip():
            owner.kill()
            raise SystemExit(f"the owner did not start its stack (exit {owner.wait()}); see {tmp}/run/logs")
        ports = [int(p) for p in line.split()]
        count = len(labelled_processes(run_id))
        t0 = time.monotonic()
        os.kill(owner.pid, signal.SIGKILL)  # the process alone: its services live in sessions of their own
        owner.wait()
        deadline = t0 + 60.0
        while labelled_processes(run_id) or listening(ports):
            if time.monotonic() > deadline:
                raise SystemExit(f"after 60 s the run still has {labelled_processes(run_id)} / {listening(ports)}")
            time.sleep(0.02)
        took = time.monotonic() - t0
        state = Path(tmp) / "run" / "stack.json"
        while '"status": "down"' not in state.read_text():  # the reaper also closes the ledger: let it finish
            if time.monotonic() > deadline:
                raise SystemExit(f"after 60 s {state} is not marked down: see {Path(tmp) / 'run' / 'reaper.log'}")
            time.sleep(0.02)
        return took, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fault", action="store_true", help="inject a link-down fault before the kill")
    parser.add_argument("--stack-file", type=Path, default=ROOT / "docker-compose.yml")
    args = parser.parse_args()
    times: list[float] = []
    for i in range(args.rounds):
        took, count = one_round(args.stack_file, args.fault)
        times.append(took)
        print(f"round {i + 1}: {count} processes of the run gone {took:.2f}s after SIGKILL of the owner")
    print(f"teardown after SIGKILL ({args.rounds} rounds): p50 {statistics.median(times):.2f}s, max {max(times):.2f}s")


if __name__ == "__main__":
    main()

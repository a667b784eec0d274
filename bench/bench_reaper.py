"""Teardown time after SIGKILL: how long a killed drill's stack outlives it (issue 11: "within seconds").

Run: flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_reaper.py [--rounds 5] [--fault] [--backend docker]

Each round starts a stack on the process backend (or the docker backend) in a child process that
owns it (as `drill run` does), optionally injects a link-down fault, then SIGKILLs that child alone
(not its group) and measures the time until no process of the run and no port of the stack is left
(docker: no container, network or volume labelled with the run's compose project). Prints every
round and p50/max. Nobody runs `drill cleanup`: the reaper does the work.
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
from harness.backends.docker import DockerBackend
from harness.backends.process import ProcessBackend
from harness.stack import load_stack
backend = DockerBackend if sys.argv[5] == "docker" else ProcessBackend
b = backend(load_stack(Path(sys.argv[1])), Path(sys.argv[2]), run_id=sys.argv[3])
b.up()
if sys.argv[4] == "fault":
    from harness.faults.base import FaultContext
    from harness.faults.network import LinkDown
    LinkDown(b, next(iter(b.stack.links)), ctx=FaultContext(run_dir=b.run_dir)).inject()
print(" ".join(str(p) for p in b.ports.values()) if sys.argv[5] == "process" else b.project, flush=True)
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


def containers(project: str) -> list[str]:
    """Every container, network and volume labelled with compose ``project``."""
    import docker

    client = docker.from_env()
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        found = [f"container {c.name}" for c in client.containers.list(all=True, ignore_removed=True, filters=label)]
        found += [f"network {n.name}" for n in client.networks.list(filters=label)]
        return found + [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    finally:
        client.close()


def one_round(stack_file: Path, fault: bool, backend: str = "process") -> tuple[float, int]:
    """(seconds from SIGKILL until nothing of the run is left, processes or docker objects the run had)."""
    with tempfile.TemporaryDirectory(prefix="bench-reaper-") as tmp:
        run_id = f"drill-bench-{uuid.uuid4().hex[:8]}"
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(stack_file), str(Path(tmp) / "run"), run_id, "fault" if fault else "-",
             backend],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert owner.stdout is not None
        line = owner.stdout.readline()
        if not line.strip():
            owner.kill()
            raise SystemExit(f"the owner did not start its stack (exit {owner.wait()}); see {tmp}/run/logs")
        if backend == "docker":
            project = line.strip()

            def left() -> list[str]:
                return containers(project)
        else:
            ports = [int(p) for p in line.split()]

            def left() -> list[str]:
                return [f"pid {p}" for p in labelled_processes(run_id)] + [f"port {p}" for p in listening(ports)]
        count = len(left())
        t0 = time.monotonic()
        os.kill(owner.pid, signal.SIGKILL)  # the process alone: its services live in sessions of their own
        owner.wait()
        deadline = t0 + 60.0
        while remaining := left():
            if time.monotonic() > deadline:
                raise SystemExit(f"after 60 s the run still has {remaining}")
            time.sleep(0.02 if backend == "process" else 0.2)
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
    parser.add_argument("--backend", choices=("process", "docker"), default="process")
    args = parser.parse_args()
    what = "processes and ports" if args.backend == "process" else "containers, networks and volumes"
    times: list[float] = []
    for i in range(args.rounds):
        took, count = one_round(args.stack_file, args.fault, args.backend)
        times.append(took)
        print(f"round {i + 1}: {count} {what} of the run gone {took:.2f}s after SIGKILL of the owner")
    print(f"{args.backend} backend, teardown after SIGKILL ({args.rounds} rounds): "
          f"p50 {statistics.median(times):.2f}s, max {max(times):.2f}s")


if __name__ == "__main__":
    main()

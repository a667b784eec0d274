"""Kill chaos: `drill run` SIGKILLed (the process alone) at random points; nothing of its runs may remain.

Nobody runs `drill cleanup`: the reaper of each stack does the work. After each kill the test checks
that no process of the trial (found by its working directory or its run label) is left, that no
port the runs recorded still listens, that no HALT file exists and that every recorded stack is
marked down. With a Docker engine, no container labelled with those runs may remain either.

Trials: ``DRILL_KILL_TRIALS`` (default 20, the issue's bar; about 3 minutes on a quiet 2-core machine).
The seed is printed, and ``DRILL_KILL_SEED`` replays a failing sequence.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.reaper import labelled_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DRILL = str(Path(sys.executable).parent / "drill")
FEATURES = sorted((ROOT / "features").glob("*.feature"))
TRIALS = int(os.environ.get("DRILL_KILL_TRIALS", "20"))


def processes_under(directory: Path) -> list[str]:
    """Processes working under ``directory`` or naming it (the drill, its services, their reapers)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == str(directory) or cwd.startswith(f"{directory}/") or str(directory) in cmd:
            found.append(f"{entry.name} {cmd[:120]}")
    return found


def listening(ports: set[int]) -> set[int]:
    wanted = {f"{p:04X}": p for p in ports}
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = fields[1].rsplit(":", 1)[1]
            if fields[3] == "0A" and port in wanted:
                found.add(wanted[port])
    return found


def leftovers(trial: Path) -> list[str]:
    problems = [f"process {p}" for p in processes_under(trial)]
    ports: set[int] = set()
    for state_file in trial.glob("report/runs/*/stack.json"):
        try:
            state = json.loads(state_file.read_text())
        except ValueError:
            problems.append(f"{state_file} unreadable")
            continue
        ports |= {int(p) for p in state.get("ports", {}).values()}
        ports |= {int(li["listen"].rsplit(":", 1)[1]) for li in state.get("links", {}).values()}
        if state.get("status") != "down":
            problems.append(f"{state_file} says {state.get('status')}")
        problems += [f"process {pid} labelled {state['run_id']}" for pid in labelled_processes(state["run_id"])]
    problems += [f"port {p} still listening" for p in sorted(listening(ports))]  # the run's Toxiproxy included
    problems += [f"HALT file {p}" for p in trial.rglob("HALT")]
    return problems


def docker_leftovers(trial: Path) -> list[str]:
    try:
        import docker

        client = docker.from_env()
        containers = client.containers.list(all=True, ignore_removed=True, filters={"label": "drill.run-dir"})
    except Exception:  # noqa: BLE001 - no engine here: the process backend is what these trials drive
        return []
    return [c.name for c in containers if str(trial) in c.labels.get("drill.run-dir", "")]


def test_sigkill_at_random_points_leaves_nothing_behind_without_cleanup(tmp_path: Path) -> None:
    seed = int(os.environ.get("DRILL_KILL_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"kill chaos: {TRIALS} trials, seed {seed} (DRILL_KILL_SEED={seed} replays them)")
    failures: list[str] = []
    for n in range(TRIALS):
        trial = tmp_path / f"trial-{n:02}"
        trial.mkdir()
        feature = rng.choice(FEATURES)
        kill_after = rng.uniform(0.5, 12.0)
        drill = subprocess.Popen(
            [DRILL, "run", str(feature), "--stack-file", str(ROOT / "docker-compose.yml"), "--report",
             str(trial / "report")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # this repository's drill project
        )  # fmt: skip
        try:
            drill.wait(timeout=kill_after)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
            os.kill(drill.pid, signal.SIGKILL)  # the process alone, as `kill -9 <pid>` does
            drill.wait()
        deadline = time.monotonic() + 15.0  # "within seconds": the reaper's grace is 3 s
        left = leftovers(trial)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = leftovers(trial)
        left += [f"container {c}" for c in docker_leftovers(trial)]
        how = "finished first" if finished else f"SIGKILL after {kill_after:.1f}s"
        print(f"trial {n + 1}: {feature.name}, {how}: {left or 'clean'}")
        if left:
            failures.append(f"trial {n + 1} ({feature.name}, {how}): {left}")
    assert not failures, f"seed {seed}:\n" + "\n".join(failures)

"""Serial vs parallel drill runs: the same features, `drill run` then `drill run -n auto`, in one go.

    flock /tmp/drill-heavy.lock .venv/bin/python bench/bench_parallel.py [-n auto|N] [PATH...]

Prints each run's wall time and verdicts, the speed-up, and for the parallel run each worker's
utilisation: the time it spent in scenarios (steps + stack start + rollback/stop, from its own
journal) over the run's wall time, and the longest scenario (the floor of any parallel run).
It starts real stacks: run it under the shared lock.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.report.model import Run, load_run, read_journal  # noqa: E402


@dataclass(frozen=True)
class Timed:
    label: str
    wall_s: float
    exit_code: int
    run: Run


def drill_run(label: str, report: Path, paths: list[str], extra: list[str]) -> Timed:
    drill = Path(sys.executable).parent / "drill"
    started = time.monotonic()
    proc = subprocess.run([str(drill), "run", *paths, "--report", str(report), *extra],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.monotonic() - started
    (report.parent / f"{label}.log").write_text(proc.stdout + proc.stderr)
    return Timed(label, wall, proc.returncode, load_run(report))


def busy_s(run: Run) -> float:
    """Time spent inside scenarios: their steps (with the stack start) plus rollback and stop."""
    return sum(sc.duration_s + sc.teardown_s for sc in run.scenarios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--workers", default="auto", help="workers of the parallel run (default: auto)")
    parser.add_argument("paths", nargs="*", help="features to run (default: every feature)")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    # named as drill names its reports, so that the parallel run starts the scenarios that took longest in
    # the serial run first, as a team's second run would
    serial = drill_run("serial", out / "report-1-serial", args.paths, [])
    parallel = drill_run("parallel", out / "report-2-parallel", args.paths, ["-n", str(args.workers)])
    for t in (serial, parallel):
        totals = ", ".join(f"{n} {s}" for s, n in sorted(t.run.totals.items()))
        print(f"{t.label:9} wall {t.wall_s:7.1f}s  exit {t.exit_code}  {len(t.run.scenarios)} scenarios: {totals}"
              f"  (log: {out / (t.label + '.log')})")
    print(f"speed-up: {serial.wall_s / parallel.wall_s:.2f}x  (serial {serial.wall_s:.1f}s -> "
          f"parallel {parallel.wall_s:.1f}s with -n {args.workers})")
    longest = max(parallel.run.scenarios, key=lambda s: s.duration_s + s.teardown_s, default=None)
    if longest is not None:
        print(f"longest scenario (the critical path's floor): {longest.duration_s + longest.teardown_s:.1f}s "
              f"{longest.name}")
    workers = sorted((out / "report-2-parallel").glob("journal-gw*.json"))
    print(f"workers: {len(workers)}; utilisation = time in scenarios / parallel wall time")
    for path in workers:
        run = read_journal(path)
        busy = busy_s(run)
        print(f"  {path.stem.removeprefix('journal-'):5} {len(run.scenarios):3} scenarios  busy {busy:6.1f}s  "
              f"utilisation {100 * busy / parallel.wall_s:5.1f}%")
    print(f"serial busy {busy_s(serial.run):.1f}s of {serial.wall_s:.1f}s wall "
          f"({100 * busy_s(serial.run) / serial.wall_s:.1f}%: the rest is start-up, collection and reports)")
    return 0 if serial.exit_code == parallel.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

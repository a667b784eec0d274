"""Where a drill suite's wall time goes: inherent waits vs stack start/stop vs the harness's own overhead.

Run the suite first (`drill run --report DIR`), then:  .venv/bin/python bench/bench_suite.py DIR/journal.json
Without an argument it runs the whole suite itself into a temporary report directory.

* inherent waits: what the scenarios need by their nature: time spent waiting on probes until the
  awaited thing happened (detections, recoveries), hold periods ("no new order for 3 s"), and the
  runbook's operator commands;
* stack: starting a fresh stack per scenario (setup) and rolling back + stopping it (teardown);
* overhead: the rest of each scenario's step time (probe construction, journal, polling slack).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def analyse(journal: dict[str, Any]) -> None:
    tot = {"steps": 0.0, "waits": 0.0, "setup": 0.0, "teardown": 0.0}  # steps exclude the stack start
    print(f"{'scenario':70} {'steps':>7} {'waits':>7} {'setup':>7} {'teardn':>7} {'overhd':>7}")
    for sc in journal["scenarios"]:
        waits = 0.0
        for ev in sc.get("timeline", {}).get("events", []):
            details = ev.get("details") or {}
            if "waited_s" in details:
                waits += float(details["waited_s"])
            if ev.get("kind") == "step_ended" and "duration_s" in details:
                waits += float(details["duration_s"])
        setup, teardown = float(sc.get("stack_up_s", 0.0)), float(sc.get("teardown_s", 0.0))
        steps = float(sc.get("duration_s", 0.0)) - setup
        tot["steps"] += steps
        tot["waits"] += waits
        tot["setup"] += setup
        tot["teardown"] += teardown
        print(f"{sc['scenario'][:70]:70} {steps:7.1f} {waits:7.1f} {setup:7.1f} {teardown:7.1f} {steps - waits:7.1f}")
    wall = tot["steps"] + tot["setup"] + tot["teardown"]
    over = tot["steps"] - tot["waits"]
    print(
        f"\n{len(journal['scenarios'])} scenarios; wall (sum of phases) {wall:.1f}s"
        f" = inherent waits {tot['waits']:.1f}s"
        f" + stack start {tot['setup']:.1f}s + rollback/stop {tot['teardown']:.1f}s + harness overhead {over:.1f}s"
        f" ({100 * over / wall if wall else 0:.1f}%)"
    )


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        report = Path(tempfile.mkdtemp(prefix="bench-suite-"))
        drill = Path(sys.executable).parent / "drill"
        subprocess.run([str(drill), "run", "--report", str(report)], check=False)
        path = report / "journal.json"
    analyse(json.loads(path.read_text()))


if __name__ == "__main__":
    main()

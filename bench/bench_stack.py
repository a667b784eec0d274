"""Stack cold start to all-healthy on the process backend (issue target: < 2 s), and stop time.

Run: .venv/bin/python bench/bench_stack.py [--rounds 5]
Prints per round and p50/max. Starts and stops real stacks on loopback only; bounded by --rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.backends.process import ProcessBackend
from harness.stack import load_stack

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    stack = load_stack(ROOT / "docker-compose.yml")
    ups: list[float] = []
    downs: list[float] = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
            backend = ProcessBackend(stack, Path(tmp) / "run")
            t0 = time.monotonic()
            backend.up()
            up = time.monotonic() - t0
            t1 = time.monotonic()
            backend.down()
            down = time.monotonic() - t1
        ups.append(up)
        downs.append(down)
        print(f"round {i + 1}: up to all-healthy {up:.2f}s ({len(stack.services)} services), down {down:.2f}s")
    print(
        f"cold start to all-healthy: p50 {statistics.median(ups):.2f}s, max {max(ups):.2f}s; "
        f"stop: p50 {statistics.median(downs):.2f}s, max {max(downs):.2f}s  (target < 2 s)"
    )


if __name__ == "__main__":
    main()

"""Stack cold start to all-healthy on the process backend (issue target: < 2 s), and stop time.

Run: .venv/bin/python bench/bench_stack.py [--rounds 5]
Prints per round and p50/max. Starts and stops real stacks on loopback only; bounded by --rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.backends.base import Backend
from harness.backends.process import ProcessBackend
from harness.stack import StackDescription, load_stack

ROOT = Path(__file__).resolve().parents[1]


def time_up_down(factory: Callable[[StackDescription, Path], Backend], rounds: int, label: str) -> None:
    """Start and stop a fresh stack ``rounds`` times; print each round and p50/max of both."""
    stack = load_stack(ROOT / "docker-compose.yml")
    ups: list[float] = []
    downs: list[float] = []
    for i in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
            backend = factory(stack, Path(tmp) / "run")
            t0 = time.monotonic()
            backend.up()
            up = time.monotonic() - t0
            t1 = time.monotonic()
            backend.down()
            down = time.monotonic() - t1
        ups.append(up)
        downs.append(down)
        print(f"round {i + 1}: {label} up to all-healthy {up:.2f}s ({len(stack.services)} services), down {down:.2f}s")
    print(
        f"{label} cold start to all-healthy: p50 {statistics.median(ups):.2f}s, max {max(ups):.2f}s; "
        f"stop: p50 {statistics.median(downs):.2f}s, max {max(downs):.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    time_up_down(ProcessBackend, args.rounds, "process stack")
    print("(target on the process backend: < 2 s)")


if __name__ == "__main__":
    main()

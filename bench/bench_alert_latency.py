"""Benchmark: flip the kill switch gauge -> KillSwitchActive visible in Alertmanager (real servers, loopback).

    .venv/bin/python bench/bench_alert_latency.py [--trials 20] [--timeout 10]

Starts a real Prometheus and Alertmanager on free 127.0.0.1 ports (the local template, the repo's
rules), with a prometheus_client exporter standing in for the ``traderunner`` job. Each trial waits a
random fraction of the 1 s scrape/evaluation cycle, sets ``traderunner_kill_switch_active`` to 1,
polls ``GET /api/v2/alerts`` every 20 ms until the P0 alert is there, then sets it back to 0 and waits
until the alert is gone. Prints p50/p99/max for both directions; exits 1 if any trial missed its
deadline or any P0 took longer than the contract's 5 s. Percentiles are nearest-rank.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.monitoring import (  # noqa: E402 - needs the repo root on sys.path
    StandInExporter,
    absent,
    monitoring_stack,
    named,
    wait_for_alerts,
    wait_until_scraped,
)

P0_DEADLINE = 5.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<22} n={len(values):<3} p50={percentile(values, 50):.2f}s "
        f"p99={percentile(values, 99):.2f}s max={max(values):.2f}s min={min(values):.2f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20, help="number of flips (default 20, at least 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per wait, seconds (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random phase offsets")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be at least 1, got {args.trials}")
    rng = random.Random(args.seed)
    fire: list[float] = []
    resolve: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-alert-latency-") as tmp,
        StandInExporter() as exporter,
        monitoring_stack(Path(tmp), {"traderunner": exporter.port}) as stack,
    ):
        watch = (stack.prometheus, stack.alertmanager)
        wait_for_alerts(stack.alertmanager_url, named("Watchdog"), timeout=30, expected="Watchdog", watch=watch)
        wait_until_scraped(stack, "traderunner")
        for trial in range(1, args.trials + 1):
            time.sleep(rng.uniform(0.0, 1.0))
            t0 = time.monotonic()
            exporter.kill_switch_active.set(1)
            up = wait_for_alerts(
                stack.alertmanager_url,
                named("KillSwitchActive", severity="P0", runbook="kill-switch-triggered"),
                timeout=args.timeout,
                expected="KillSwitchActive (P0)",
                poll=0.02,
                started=t0,
                watch=watch,
            )
            time.sleep(rng.uniform(0.0, 1.0))
            t1 = time.monotonic()
            exporter.kill_switch_active.set(0)
            down = wait_for_alerts(
                stack.alertmanager_url,
                absent("KillSwitchActive"),
                timeout=args.timeout,
                expected="KillSwitchActive resolved",
                poll=0.02,
                started=t1,
                watch=watch,
            )
            fire.append(up.elapsed)
            resolve.append(down.elapsed)
            print(f"trial {trial:>3}: fired after {up.elapsed:.2f}s, resolved after {down.elapsed:.2f}s", flush=True)
    print(summary("kill switch -> alert", fire))
    print(summary("reset -> alert gone", resolve))
    slow = [v for v in fire if v > P0_DEADLINE]
    if slow:
        print(f"FAIL: {len(slow)} trial(s) above the {P0_DEADLINE:.0f} s P0 deadline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

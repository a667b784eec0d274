"""Every P0 alert, caused for real in a running stack: time from the cause to the alert in Alertmanager.

MiFID II RTS 6 Art. 16(5) asks for real-time alerts within 5 s of the event; our target is every P0
visible in Alertmanager within 5 s on the process backend. For each P0 alert this runs --trials
(default 20) cause -> alert -> clear -> resolved cycles and prints p50 / p99 / max.

Causes (each measured from the moment the cause is in place):
  KillSwitchActive                   `traderunner trip-kill-switch` returns        (clear: reset with approval)
  TradingEngineDown                  traderunner SIGKILLed                          (clear: restart)
  UnexpectedPosition                 broker admin books a position with no order    (clear: remove it)
  BrokerManualInterventionRequired   engine logs "manual intervention required"     (clear: link back + reconnect)
                                     after the broker link is taken down (the log line's own timestamp is the cause)

Run: .venv/bin/python bench/bench_p0_alerts.py [--trials 20] [--alerts KillSwitchActive,...]
Loopback only; bounded by --trials; stops its stack at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.backends.process import ProcessBackend
from harness.clock import Clock
from harness.faults.base import FaultContext
from harness.faults.network import LinkDown
from harness.faults.service import Kill
from harness.faults.trading import InjectedPosition
from harness.probes.alertmanager import AlertAbsent, AlertFiring
from harness.stack import load_stack
from harness.trading import TradingTruth, log_timestamp_of, open_positions
from harness.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--alerts", default="KillSwitchActive,TradingEngineDown,UnexpectedPosition,BrokerManualInterventionRequired"
    )
    args = parser.parse_args()
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="bench-p0-") as tmp:
        backend = ProcessBackend(load_stack(ROOT / "docker-compose.yml"), Path(tmp) / "run")
        backend.up()
        try:
            am = backend.endpoint("alertmanager", "http").url
            ctx = FaultContext(run_dir=backend.run_dir)

            def firing(name: str) -> Callable[[], float]:
                def wait() -> float:
                    return wait_until(
                        AlertFiring(am, name, severity="P0"), deadline_s=30, what=name, interval_s=0.05
                    ).satisfied_at

                return wait

            def resolved(name: str) -> None:
                wait_until(AlertAbsent(am, name), deadline_s=60, what=f"{name} resolved", interval_s=0.2)

            def op(*a: str) -> None:
                r = backend.operator(list(a), timeout=30)
                if r.exit_code != 0:
                    raise SystemExit(f"traderunner {' '.join(a)} failed: {r.output}")

            def kill_switch() -> float:
                op("trip-kill-switch", "--reason", "bench", "--by", "bench")
                cause = clock.now()
                seen = firing("KillSwitchActive")()
                op("reset-kill-switch", "--approved-by", "bench", "--reason", "bench")
                resolved("KillSwitchActive")
                return seen - cause

            def engine_down() -> float:
                fault = Kill(backend, "traderunner", ctx=ctx)
                fault.inject()
                cause = clock.now()
                seen = firing("TradingEngineDown")()
                fault.rollback()
                resolved("TradingEngineDown")
                return seen - cause

            def unexpected_position() -> float:
                held = TradingTruth(backend).positions()
                symbol = sorted(held)[0]
                endpoint = backend.stack.trading.fault_endpoint("position")
                fault = InjectedPosition(backend, symbol, 50, endpoint=endpoint, ctx=ctx)
                fault.inject()
                cause = clock.now()
                seen = firing("UnexpectedPosition")()
                fault.rollback()
                resolved("UnexpectedPosition")
                return seen - cause

            def manual_intervention() -> float:
                fault = LinkDown(backend, "broker", ctx=ctx)
                fault.inject()
                seen = firing("BrokerManualInterventionRequired")()
                logged = log_timestamp_of(backend, "traderunner", "manual intervention required")
                cause = clock.monotonic_at(logged) if logged is not None else seen
                fault.rollback()
                op("broker", "reconnect")
                resolved("BrokerManualInterventionRequired")
                return seen - cause

            cases = {
                "KillSwitchActive": kill_switch,
                "TradingEngineDown": engine_down,
                "UnexpectedPosition": unexpected_position,
                "BrokerManualInterventionRequired": manual_intervention,
            }
            wait_until(open_positions(TradingTruth(backend)), deadline_s=60, what="positions built (warm-up)")
            for name in args.alerts.split(","):
                samples = [cases[name]() for _ in range(args.trials)]
                within = sum(s <= 5.0 for s in samples)
                print(
                    f"{name:34} n={len(samples):3}  p50 {statistics.median(samples):5.2f}s  "
                    f"p99 {pct(samples, 0.99):5.2f}s  max {max(samples):5.2f}s  within 5 s: {within}/{len(samples)}",
                    flush=True,
                )
        finally:
            backend.down()


if __name__ == "__main__":
    main()

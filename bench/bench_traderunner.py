"""Benchmark traderunner's per-bar path in-process: quality validation + strategy + risk + daily P&L.

    .venv/bin/python bench/bench_traderunner.py [--bars N] [--symbols N]
    .venv/bin/python bench/bench_traderunner.py --simulate [--runs N] [--minutes M]

The first form feeds synthetic M5 bars (seeded random walk, the same shape marketdata serves,
with the service's 5-bar overlap per poll) through ``FeedQuality.ingest``, ``Strategy.decide``,
``check_order`` and ``lifetime_pnl`` and prints bars processed per second. No network, no disk.

``--simulate`` checks the default sizing claims in ``mockstack/traderunner/config.py``: for
``--runs`` seeded walks (volatility 0.001 per bar, 5 bars per second) it reports how many would
have tripped ``max_daily_loss`` within 5/10/30 minutes, and how often a -8 % shock over 3 bars
trips it when it lands at 1, 5 or 15 minutes.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mockstack.common.universe import build_universe  # noqa: E402
from mockstack.traderunner.config import RiskConfig, StrategyConfig  # noqa: E402
from mockstack.traderunner.quality import BAR_SECONDS, FeedQuality  # noqa: E402
from mockstack.traderunner.risk import check_order, lifetime_pnl  # noqa: E402
from mockstack.traderunner.store import Position, apply_fill_to_position  # noqa: E402
from mockstack.traderunner.strategy import Strategy  # noqa: E402

T0 = 1_767_623_400
BARS_PER_MINUTE = 300  # one bar every 200 ms


def make_bar(i: int, prev: float, price: float, rng: random.Random) -> dict[str, Any]:
    hi = max(prev, price) * (1 + abs(rng.gauss(0, 0.0003)))
    lo = min(prev, price) * (1 - abs(rng.gauss(0, 0.0003)))
    return {
        "timestamp": T0 + i * BAR_SECONDS,
        "open": prev,
        "high": hi,
        "low": lo,
        "close": price,
        "volume": rng.randint(100, 10_000),
    }


def bench(bars_per_symbol: int, n_symbols: int) -> None:
    rng = random.Random(7)
    universe = build_universe(42, n_symbols)
    symbols = [i.symbol for i in universe]
    prices = {i.symbol: i.start_price for i in universe}
    history: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
    clock_now = [0.0]
    quality = FeedQuality(symbols, lambda: clock_now[0])
    strategy = Strategy(StrategyConfig())
    risk = RiskConfig()
    positions = {s: Position(s, 0, 0.0, 0.0) for s in symbols}
    marks: dict[str, float] = {}
    orders = 0
    # pre-generate so the timing covers only traderunner code
    for s in symbols:
        p = prices[s]
        for i in range(bars_per_symbol):
            q = p * math.exp(rng.gauss(0, 0.001))
            history[s].append(make_bar(i, p, q, rng))
            p = q
    started = time.perf_counter()
    for i in range(bars_per_symbol):
        clock_now[0] += 0.2
        for s in symbols:
            window = history[s][max(0, i - 5) : i + 1]  # the service's overlapping poll
            result = quality.ingest(s, window)
            if not result.new_bars:
                continue
            marks[s] = result.new_bars[-1].close
            intent = strategy.decide(s, quality.closes(s, strategy.config.slow), positions[s].qty, 0)
            if intent is None:
                continue
            decision = check_order(
                risk,
                kill_active=False,
                side=intent.side,
                qty=intent.qty,
                exposure=positions[s].qty,
                orders_last_minute=0,
            )
            if decision.allowed:
                orders += 1
                positions[s] = apply_fill_to_position(positions[s], intent.side, intent.qty, intent.limit_price)
        lifetime_pnl(positions, marks)
    elapsed = time.perf_counter() - started
    total = bars_per_symbol * n_symbols
    print(f"bars processed: {total} ({n_symbols} symbols x {bars_per_symbol}), orders decided: {orders}")
    print(
        f"elapsed: {elapsed:.3f} s -> {total / elapsed:,.0f} bars/s "
        f"({elapsed / bars_per_symbol * 1000:.3f} ms per poll of {n_symbols} symbols; "
        "the service polls every 200 ms)"
    )
    print(f"violations: {len(quality.violations)} (expected 0 on a clean walk)")


def simulate(runs: int, minutes: int) -> None:
    universe = build_universe(42, 8)
    cfg = StrategyConfig()
    strategy = Strategy(cfg)
    limit = RiskConfig().max_daily_loss
    horizons = (5, 10, minutes)
    tripped = dict.fromkeys(horizons, 0)
    shock_at = (1, 5, 15)
    shock_trips = dict.fromkeys(shock_at, 0)
    for run in range(runs):
        rng = random.Random(run)
        closes = {i.symbol: [i.start_price] * cfg.slow for i in universe}
        pos = {i.symbol: Position(i.symbol, 0, 0.0, 0.0) for i in universe}
        worst = 0.0
        first_trip: float | None = None
        for bar in range(minutes * BARS_PER_MINUTE):
            for s, series in closes.items():
                series.append(series[-1] * math.exp(rng.gauss(0, 0.001)))
                del series[: -cfg.slow - 1]
                intent = strategy.decide(s, series, pos[s].qty, 0)
                if intent is not None:
                    pos[s] = apply_fill_to_position(pos[s], intent.side, intent.qty, intent.limit_price)
            realized, unrealized = lifetime_pnl(pos, {s: c[-1] for s, c in closes.items()})
            total = realized + unrealized
            worst = min(worst, total)
            if first_trip is None and total <= -limit:
                first_trip = bar / BARS_PER_MINUTE
            minute = (bar + 1) / BARS_PER_MINUTE
            if minute in shock_at:
                # a -8 % move on every symbol at this moment (positions as held then)
                shocked = sum(p.qty * closes[s][-1] * 0.92 - p.qty * p.avg_price for s, p in pos.items())
                if realized + shocked <= -limit:
                    shock_trips[int(minute)] += 1
        for h in horizons:
            if first_trip is not None and first_trip <= h:
                tripped[h] += 1
    print(f"{runs} seeded walks, default configs (max_daily_loss {limit}, base_qty {cfg.base_qty}):")
    for h in horizons:
        print(f"  walk alone trips within {h:>2} min: {tripped[h]}/{runs}")
    for m in shock_at:
        print(f"  -8 % shock at minute {m:>2} trips: {shock_trips[m]}/{runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=5000, help="bars per symbol (bounded run)")
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--simulate", action="store_true", help="walk-vs-shock trip statistics instead")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args()
    if args.simulate:
        simulate(args.runs, args.minutes)
    else:
        bench(args.bars, args.symbols)


if __name__ == "__main__":
    main()

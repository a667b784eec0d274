"""Benchmark of the marketdata service: /api/intraday throughput on loopback, memory for a long run.

Plain script (no pytest):  .venv/bin/python bench/bench_marketdata.py [--duration 3] [--clients 4] [--bars 100000]

1. Memory: an in-process feed on a manual clock publishes ``--bars`` bars for 8 symbols at once;
   prints publication time, traced memory and the size of the stored closes, and how long full and
   incremental reads take.
2. Throughput: starts ``python -m mockstack.marketdata`` on a free 127.0.0.1 port and hammers
   ``/api/intraday`` with keep-alive clients for ``--duration`` seconds, in two shapes: the
   traderunner's incremental poll (``from`` = the last bar) and a 100-bar window, each with one
   connection per request (as urllib does) and with keep-alive connections.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mockstack.common.universe import build_universe  # noqa: E402
from mockstack.marketdata.clock import BarClock, ManualTime  # noqa: E402
from mockstack.marketdata.config import DEFAULT_START  # noqa: E402
from mockstack.marketdata.feed import MarketFeed  # noqa: E402


def rss_mb() -> float:
    """Current resident set size of this process (Linux /proc; max RSS elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory(bars: int) -> None:
    gc.collect()
    rss_before = rss_mb()
    time_source = ManualTime()
    clock = BarClock(DEFAULT_START, 200, 0, time_source.now)
    feed = MarketFeed(build_universe(42, 8), seed=42, volatility=0.001, clock=clock)
    time_source.advance(bars * 0.2)
    t0 = time.perf_counter()
    feed.advance()
    publish_s = time.perf_counter() - t0
    gc.collect()
    rss_after = rss_mb()
    stored = sum(c.buffer_info()[1] * c.itemsize for c in feed._closes.values())
    symbol = feed.symbols[0]
    t0 = time.perf_counter()
    full = feed.bars(symbol)
    full_s = time.perf_counter() - t0
    last_ts = full[-1].timestamp
    t0 = time.perf_counter()
    for _ in range(1000):
        feed.bars(symbol, last_ts)
    tail_us = (time.perf_counter() - t0) / 1000 * 1e6
    n = len(feed.symbols)
    print(f"memory: {bars:,} bars x {n} symbols published in {publish_s:.2f}s ({bars * n / publish_s:,.0f} bars/s)")
    print(f"  stored closes: {stored / 1e6:.1f} MB ({stored / bars / n:.0f} B per bar per symbol)")
    print(f"  RSS growth while publishing: {rss_after - rss_before:.1f} MB (process RSS now {rss_after:.0f} MB)")
    print(f"  full read of {len(full):,} bars: {full_s * 1000:.0f} ms; incremental read (from=last): {tail_us:.0f} us")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"marketdata exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"marketdata not healthy at {url} within {timeout}s")


def hammer(port: int, path_for: list[str], duration: float, clients: int, keep_alive: bool) -> tuple[int, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        mine: list[float] = []
        i = n
        headers = {} if keep_alive else {"Connection": "close"}
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            conn.request("GET", path_for[i % len(path_for)], headers=headers)
            resp = conn.getresponse()
            resp.read()
            if not keep_alive:
                conn.close()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            mine.append(time.perf_counter() - t0)
            i += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies), latencies


def bench_http(duration: float, clients: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "mockstack.marketdata", "--http-port", str(port), "--history-bars", "1000"]
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(f"{base}/health", proc)
        with urllib.request.urlopen(f"{base}/api/symbols", timeout=5) as resp:
            syms = [s["symbol"] for s in json.load(resp)]
        with urllib.request.urlopen(f"{base}/api/clock", timeout=5) as resp:
            last = json.load(resp)["last_bar_timestamp"]
        shapes = {
            "incremental poll (from=last bar)": [f"/api/intraday/{s}?interval=5m&from={last}" for s in syms],
            "100-bar window": [f"/api/intraday/{s}?interval=5m&from={last - 99 * 300}&to={last}" for s in syms],
        }
        print(f"throughput: {clients} clients, {duration:.0f}s per shape, server in its own process")
        for keep_alive in (False, True):
            mode = "keep-alive" if keep_alive else "one connection per request"
            for name, paths in shapes.items():
                count, lat = hammer(port, paths, duration, clients, keep_alive)
                lat.sort()
                p50 = statistics.median(lat) * 1000
                p99 = lat[int(len(lat) * 0.99)] * 1000
                print(f"  {mode}, {name}: {count / duration:,.0f} req/s  (p50 {p50:.2f} ms, p99 {p99:.2f} ms)")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per throughput shape (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients (default 4)")
    parser.add_argument("--bars", type=int, default=100_000, help="bars to publish for the memory run")
    args = parser.parse_args()
    bench_memory(args.bars)
    bench_http(args.duration, args.clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())

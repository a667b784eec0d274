"""Place -> ack round trip of the broker over loopback TCP: p50 / p99 over N sequential orders.

Starts a real broker process (temporary state DB, free ports, rate limit lifted, long fill latency so
fills do not interleave with acks), sends ``--orders`` places one at a time on one session, prints
percentiles, then stops the broker. Bounded: it stops by itself after the orders or ``--timeout``.

    .venv/bin/python bench/bench_broker_roundtrip.py [--orders 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"broker exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"broker not healthy at {url} within {timeout}s")


def percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100.0 * len(sorted_values)) - 1))
    return sorted_values[index]


def run(orders: int, timeout: float) -> int:
    order_port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        argv = [
            sys.executable, "-m", "mockstack.broker",
            "--order-port", str(order_port), "--http-port", str(http_port),
            "--state-db", str(Path(tmp) / "broker.sqlite3"),
            "--max-orders-per-second", "1000000", "--fill-latency-ms", "600000",
            "--heartbeat-interval", "60",
        ]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_healthy(f"http://127.0.0.1:{http_port}/health", proc, 15.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/symbols", timeout=5) as resp:
                symbol = json.loads(resp.read())[0]["symbol"]
            sock = socket.create_connection(("127.0.0.1", order_port), timeout=5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            sock.sendall(b'{"type":"hello","client_id":"bench"}\n')
            reader.readline()
            samples: list[float] = []
            deadline = time.monotonic() + timeout
            for i in range(orders):
                if time.monotonic() > deadline:
                    print(f"stopped after {i} orders: --timeout {timeout}s reached")
                    break
                line = json.dumps(
                    {
                        "type": "place",
                        "idempotency_key": f"bench-{i}",
                        "symbol": symbol,
                        "side": "buy" if i % 2 else "sell",
                        "qty": 1,
                        "limit_price": 100.0,
                    }
                )
                start = time.perf_counter()
                sock.sendall(line.encode() + b"\n")
                while True:
                    answer = json.loads(reader.readline())
                    if answer["type"] in ("ack", "reject"):
                        break
                samples.append(time.perf_counter() - start)
                if answer["type"] != "ack":
                    raise SystemExit(f"unexpected answer: {answer}")
            sock.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    if not samples:
        print("no samples")
        return 1
    ordered = sorted(samples)
    ms = 1000.0
    print(f"broker place->ack round trip over loopback, {len(ordered)} orders (1 session, sequential)")
    print(f"  p50  {percentile(ordered, 50) * ms:7.3f} ms")
    print(f"  p90  {percentile(ordered, 90) * ms:7.3f} ms")
    print(f"  p99  {percentile(ordered, 99) * ms:7.3f} ms")
    print(f"  max  {ordered[-1] * ms:7.3f} ms   mean {statistics.fmean(ordered) * ms:.3f} ms")
    print(f"  throughput {len(ordered) / sum(ordered):.0f} orders/s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=2000, help="how many orders (default 2000)")
    parser.add_argument("--timeout", type=float, default=60.0, help="stop sending after this many seconds")
    args = parser.parse_args()
    if args.orders < 1:
        parser.error("--orders must be >= 1")
    return run(args.orders, args.timeout)


if __name__ == "__main__":
    sys.exit(main())

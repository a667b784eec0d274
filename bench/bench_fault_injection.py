"""Injection latency per network fault type: from the ``inject()`` call to the effect seen on a real socket.

Starts a real toxiproxy-server and a TCP echo server on loopback (ephemeral ports), then for each
fault type repeats: start a clean probe loop, call ``inject()``, and record when the first probe
*started* that observed the effect (so the figure is an upper bound on when the effect was in
place, not inflated by the probe's own wait). Rollback latency is measured the same way
(``rollback()`` call -> first clean echo). Bounded: ``--rounds`` (default 15) per type and a
2 s cap per observation.

    .venv/bin/python bench/bench_fault_injection.py [--rounds N]
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.backends.base import LinkInfo  # noqa: E402
from harness.faults import FaultContext, LinkDown, Toxic  # noqa: E402
from harness.faults.base import Fault  # noqa: E402
from harness.tools import find_tool  # noqa: E402
from harness.toxiproxy import ToxiproxyAdapter  # noqa: E402
from tests.support.processes import free_port, start_service  # noqa: E402
from tests.unit.fake_backend import FakeBackend  # noqa: E402

CAP_S = 2.0
PROBE_TIMEOUT_S = 0.05


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Backend(FakeBackend):
    def __init__(self, tmp: Path, adapter: ToxiproxyAdapter, link: LinkInfo) -> None:
        super().__init__(tmp)
        self._adapter, self._link = adapter, link

    @property
    def toxiproxy(self) -> ToxiproxyAdapter:  # type: ignore[override]
        return self._adapter

    def link(self, name: str) -> LinkInfo:
        return self._link


def echo_once(address: tuple[str, int], payload: bytes, timeout: float) -> tuple[str, float]:
    """('ok'|'refused'|'stalled'|'reset'|'short', round-trip seconds) for one fresh connection."""
    start = time.monotonic()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    return "short", time.monotonic() - start
                got += chunk
    except ConnectionRefusedError:
        return "refused", time.monotonic() - start
    except TimeoutError:
        return "stalled", time.monotonic() - start
    except (ConnectionResetError, BrokenPipeError):
        return "reset", time.monotonic() - start
    return "ok", time.monotonic() - start


def time_until(check: Callable[[], bool], call: Callable[[], None]) -> tuple[float, float]:
    """(call duration, time from call start to the start of the first probe that saw the effect)."""
    t0 = time.monotonic()
    call()
    call_s = time.monotonic() - t0
    while time.monotonic() - t0 < CAP_S:
        probe_start = time.monotonic()
        if check():
            return call_s, probe_start - t0
    return call_s, float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = free_port()
    toxiproxy = start_service("toxiproxy", [find_tool("toxiproxy"), "-host", "127.0.0.1", "-port", str(api)],
                              tmp / "logs", health_url=f"http://127.0.0.1:{api}/version")
    try:
        adapter = ToxiproxyAdapter("127.0.0.1", api)
        listen = f"127.0.0.1:{free_port()}"
        upstream = f"127.0.0.1:{server.server_address[1]}"
        adapter.create_proxy("drill_broker", listen, upstream)
        address = ("127.0.0.1", int(listen.rsplit(":", 1)[1]))
        backend = _Backend(tmp, adapter, LinkInfo("broker", "drill_broker", listen, upstream))
        ctx = FaultContext(run_dir=tmp / "run")
        small, big = b"ping\n", b"x" * 4096

        cases: list[tuple[str, Callable[[], Fault], Callable[[], bool]]] = [
            ("link_down", lambda: LinkDown(backend, "broker", ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, small, PROBE_TIMEOUT_S)[0] == "refused"),
            ("latency 200ms", lambda: Toxic(backend, "broker", "latency", latency=200, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, small, 1.0)[1] >= 0.2),
            ("jitter 100+-50ms", lambda: Toxic(backend, "broker", "jitter", latency=100, jitter=50, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, small, 1.0)[1] >= 0.05),
            ("timeout (stall)", lambda: Toxic(backend, "broker", "timeout", timeout=0, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, small, PROBE_TIMEOUT_S)[0] == "stalled"),
            ("reset_peer", lambda: Toxic(backend, "broker", "reset_peer", timeout=0, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, small, PROBE_TIMEOUT_S)[0] in ("reset", "short")),
            ("bandwidth 1KB/s", lambda: Toxic(backend, "broker", "bandwidth", rate=1, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, big, PROBE_TIMEOUT_S)[0] == "stalled"),
            ("limit_data 8B", lambda: Toxic(backend, "broker", "limit_data", bytes=8, ctx=ctx),  # type: ignore[arg-type]
             lambda: echo_once(address, big, PROBE_TIMEOUT_S)[0] in ("short", "reset")),
        ]

        def is_clean() -> bool:
            status, rtt = echo_once(address, small, 0.5)
            return status == "ok" and rtt < 0.05

        print(f"toxiproxy {adapter.version()} on 127.0.0.1:{api}; {args.rounds} rounds per fault; times in ms")
        print(f"{'fault':<18} {'inject() call':>14} {'-> effect p50':>14} {'p95':>8} {'max':>8} "
              f"{'rollback -> clean p50':>22} {'max':>8}")
        for name, make, effect in cases:
            calls, effects, rollbacks = [], [], []
            for _ in range(args.rounds):
                assert is_clean(), "proxy not clean before a round"
                fault = make()
                call_s, effect_s = time_until(effect, fault.inject)
                _, back_s = time_until(is_clean, fault.rollback)
                calls.append(call_s * 1000)
                effects.append(effect_s * 1000)
                rollbacks.append(back_s * 1000)

            def p(values: list[float], q: float) -> float:
                ordered = sorted(values)
                return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

            print(f"{name:<18} {statistics.median(calls):>14.2f} {statistics.median(effects):>14.2f} "
                  f"{p(effects, 0.95):>8.2f} {max(effects):>8.2f} {statistics.median(rollbacks):>22.2f} "
                  f"{max(rollbacks):>8.2f}")
        adapter.delete_proxy("drill_broker")
    finally:
        toxiproxy.stop()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Network faults against a REAL toxiproxy-server and a TCP echo server, both on loopback.

Each test talks through the proxy with plain sockets and checks what a client would feel.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import LinkInfo
from harness.errors import ToxiproxyError
from harness.faults import FaultContext, LinkDown, Toxic, cleanup, pending
from harness.tools import find_tool
from harness.toxiproxy import ToxiproxyAdapter
from tests.support.processes import ServiceProcess, free_port, start_service
from tests.unit.fake_backend import FakeBackend

pytestmark = pytest.mark.integration

PROXY = "drill_broker"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                self.request.sendall(data)
            except OSError:
                return


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def echo() -> Iterator[int]:
    server = EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def toxiproxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = start_service(
        "toxiproxy", [find_tool("toxiproxy"), "-host", "127.0.0.1", "-port", str(port)],
        tmp_path_factory.mktemp("toxiproxy"), health_url=f"http://127.0.0.1:{port}/version", ports={"api": port},
    )
    try:
        yield proc
    finally:
        proc.stop()


class ToxiBackend(FakeBackend):
    """The fake backend, but with a real Toxiproxy and a real proxied link."""

    def __init__(self, tmp: Path, adapter: ToxiproxyAdapter, listen: str, upstream: str) -> None:
        super().__init__(tmp)
        self._real = adapter
        self._link = LinkInfo("broker", PROXY, listen, upstream)

    @property
    def toxiproxy(self) -> ToxiproxyAdapter:  # type: ignore[override]
        return self._real

    def link(self, name: str) -> LinkInfo:
        assert name == "broker"
        return self._link


@pytest.fixture
def backend(tmp_path: Path, toxiproxy_server: ServiceProcess, echo: int) -> Iterator[ToxiBackend]:
    adapter = ToxiproxyAdapter("127.0.0.1", toxiproxy_server.ports["api"])
    listen = f"127.0.0.1:{free_port()}"
    adapter.create_proxy(PROXY, listen, f"127.0.0.1:{echo}")
    try:
        yield ToxiBackend(tmp_path, adapter, listen, f"127.0.0.1:{echo}")
    finally:
        adapter.delete_proxy(PROXY)


def addr(backend: ToxiBackend) -> tuple[str, int]:
    host, port = backend.link("broker").listen.rsplit(":", 1)
    return host, int(port)


def round_trip(backend: ToxiBackend, payload: bytes = b"ping\n", timeout: float = 3.0) -> float:
    """Seconds for one echo through the proxy on a fresh connection."""
    with socket.create_connection(addr(backend), timeout=timeout) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(got)} bytes")
            got += chunk
        assert got == payload
        return time.monotonic() - start


def assert_clean(backend: ToxiBackend) -> None:
    proxy = backend.toxiproxy.proxy(PROXY)
    assert proxy.enabled and proxy.toxics == ()
    assert round_trip(backend) < 0.2


def test_link_down_refuses_connections_and_rollback_restores(backend: ToxiBackend) -> None:
    assert round_trip(backend) < 0.2
    held = socket.create_connection(addr(backend), timeout=2)
    with LinkDown(backend, "broker"):  # type: ignore[arg-type]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr(backend), timeout=1)
        held.sendall(b"x")  # the existing connection was dropped: EOF or reset
        with contextlib.suppress(ConnectionResetError):
            assert held.recv(10) == b""
    held.close()
    assert_clean(backend)


def test_latency_adds_measurable_delay(backend: ToxiBackend) -> None:
    baseline = round_trip(backend)
    with Toxic(backend, "broker", "latency", latency=300):  # type: ignore[arg-type]
        slow = round_trip(backend)
    assert slow >= 0.3 > baseline + 0.1
    assert_clean(backend)


def test_upstream_latency_and_jitter(backend: ToxiBackend) -> None:
    with Toxic(backend, "broker", "jitter", latency=200, jitter=50, stream="upstream"):  # type: ignore[arg-type]
        delays = [round_trip(backend) for _ in range(3)]
    assert all(0.14 <= d <= 0.5 for d in delays), delays
    assert_clean(backend)


def test_timeout_toxic_stalls(backend: ToxiBackend) -> None:
    with Toxic(backend, "broker", "timeout", timeout=0), pytest.raises(TimeoutError):  # type: ignore[arg-type]
        round_trip(backend, timeout=0.5)
    assert_clean(backend)


def test_reset_peer_resets(backend: ToxiBackend) -> None:
    with Toxic(backend, "broker", "reset_peer", timeout=0), pytest.raises((ConnectionResetError, ConnectionError)):  # type: ignore[arg-type]
        round_trip(backend, timeout=2)
    assert_clean(backend)


def test_limit_data_closes_after_n_bytes(backend: ToxiBackend) -> None:
    with Toxic(backend, "broker", "limit_data", bytes=8), pytest.raises((ConnectionError, OSError)):  # type: ignore[arg-type]
        round_trip(backend, payload=b"0123456789abcdef\n", timeout=2)
    assert_clean(backend)


FAULTS = [
    ("link_down", {}),
    ("latency", {"latency": 100}),
    ("jitter", {"jitter": 20}),
    ("timeout", {"timeout": 0}),
    ("reset_peer", {"timeout": 0}),
    ("bandwidth", {"rate": 1}),
    ("slicer", {"average_size": 4, "delay": 10}),
    ("limit_data", {"bytes": 4}),
    ("slow_close", {"delay": 100}),
]


# A link that is down is down in both directions: it has one case, every toxic has one per stream.
CASES = [(t, a, s) for t, a in FAULTS for s in (("both",) if t == "link_down" else ("downstream", "upstream"))]


@pytest.mark.parametrize(("toxic", "attrs", "stream"), CASES, ids=[f"{c[2]}-{c[0]}" for c in CASES])
def test_every_fault_leaves_the_proxy_clean_even_when_the_body_raises(
    backend: ToxiBackend, toxic: str, attrs: dict[str, int], stream: str
) -> None:
    if toxic == "link_down":
        fault: LinkDown | Toxic = LinkDown(backend, "broker")  # type: ignore[arg-type]
    else:
        fault = Toxic(backend, "broker", toxic, stream=stream, **attrs)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="step failed"), fault:
        proxy = backend.toxiproxy.proxy(PROXY)
        assert (not proxy.enabled) if toxic == "link_down" else len(proxy.toxics) == 1
        raise RuntimeError("step failed")
    assert_clean(backend)
    assert pending(backend.run_dir) == ()


def test_cleanup_after_a_crashed_run_resets_the_real_proxy(backend: ToxiBackend) -> None:
    LinkDown(backend, "broker").inject()  # type: ignore[arg-type]
    Toxic(backend, "broker", "latency", latency=500).inject()  # type: ignore[arg-type]
    assert len(pending(backend.run_dir)) == 2  # the run "dies" here
    report = cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert report.ok, report.summary()
    assert pending(backend.run_dir) == ()
    assert_clean(backend)


def test_toxiproxy_rejecting_a_toxic_is_an_injection_error_and_nothing_stays(backend: ToxiBackend) -> None:
    Toxic(backend, "broker", "latency", latency=50, fault_id="same").inject()  # type: ignore[arg-type]
    twin = Toxic(backend, "broker", "latency", latency=50, fault_id="same")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="already exists") as info:
        twin.inject()
    assert isinstance(info.value.__cause__, ToxiproxyError)
    # the twin's rollback removed the toxic of the same name: nothing is left behind
    assert backend.toxiproxy.proxy(PROXY).toxics == ()
    cleanup(backend, backend.run_dir)  # type: ignore[arg-type]
    assert_clean(backend)


def test_dry_run_against_a_real_proxy_changes_nothing(backend: ToxiBackend) -> None:
    from harness.safety import DryRun

    with Toxic(backend, "broker", "timeout", ctx=FaultContext(dry_run=DryRun())):  # type: ignore[arg-type]
        assert round_trip(backend) < 0.2
    assert_clean(backend)


def test_a_fault_gone_before_its_rollback_is_said_on_the_timeline(backend: ToxiBackend) -> None:
    """A Toxiproxy that restarts forgets its toxics and comes back with its links enabled: the fault ends
    without its rollback, and what the drill observes afterwards is not the fault's doing. Here the toxic is
    removed and the link enabled behind the faults' backs, as a restart would; the rollbacks say so."""
    from harness.clock import EventKind, Timeline

    timeline = Timeline()
    ctx = FaultContext(timeline=timeline, run_dir=backend.run_dir)
    slow = Toxic(backend, "broker", "latency", latency=300, ctx=ctx)  # type: ignore[arg-type]
    down = LinkDown(backend, "broker", ctx=ctx)  # type: ignore[arg-type]
    kept = Toxic(backend, "broker", "latency", latency=100, ctx=ctx)  # type: ignore[arg-type]
    for fault in (slow, down, kept):
        fault.inject()
    backend.toxiproxy.remove_toxic(PROXY, slow.toxic_name)  # as a restarted Toxiproxy would have it
    backend.toxiproxy.set_enabled(PROXY, True)
    for fault in (slow, down, kept):
        fault.rollback()
    rolled = {e.details["fault_id"]: e.details.get("found_gone") for e in timeline.events
              if e.kind == EventKind.FAULT_ROLLED_BACK}
    assert rolled == {
        slow.fault_id: f"toxic {slow.toxic_name} was no longer on proxy {PROXY} (Toxiproxy restarted, or something "
        "removed it)",
        down.fault_id: f"proxy {PROXY} was already enabled (Toxiproxy restarted, or something enabled it)",
        kept.fault_id: None,  # in place until its rollback: nothing to say
    }
    notes = [e.label for e in timeline.events if e.kind == EventKind.NOTE]
    assert len(notes) == 2 and all("was no longer in place when it was rolled back" in n for n in notes), notes
    assert pending(backend.run_dir) == ()  # rolled back all the same: nothing left for drill cleanup
    assert_clean(backend)

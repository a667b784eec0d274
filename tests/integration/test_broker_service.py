"""The real broker process over a real socket: sessions, orders, fills, idempotency across kill -9, admin."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ServiceProcess, free_port, http_json, start_service

pytestmark = pytest.mark.integration

Message = dict[str, Any]


class BrokerClient:
    """A minimal line client: send objects, read messages by type (heartbeats kept aside)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.heartbeats: list[Message] = []
        self.timeout = timeout

    def send_raw(self, line: bytes) -> None:
        self.sock.sendall(line)

    def send(self, message: Message) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def read(self, timeout: float | None = None) -> Message:
        """The next line as a message; TimeoutError (the client stays usable) if none in time."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the broker in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError as exc:
                raise TimeoutError("no message from the broker in time") from exc
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        value = json.loads(line)
        assert isinstance(value, dict)
        return value

    def expect(self, kind: str, timeout: float | None = None) -> Message:
        """The next non-heartbeat message, which must be of ``kind``."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            message = self.read(max(deadline - time.monotonic(), 0.01))
            if message["type"] == "heartbeat" and kind != "heartbeat":
                self.heartbeats.append(message)
                continue
            assert message["type"] == kind, f"expected {kind}, got {message}"
            return message

    def hello(self, client_id: str = "it") -> Message:
        self.send({"type": "hello", "client_id": client_id})
        return self.expect("welcome")

    def place(self, key: str, symbol: str, qty: int = 10, side: str = "buy", price: float = 100.0) -> Message:
        self.send(
            {"type": "place", "idempotency_key": key, "symbol": symbol, "side": side, "qty": qty, "limit_price": price}
        )
        message = self.read()
        while message["type"] in ("heartbeat", "fill"):
            message = self.read()
        return message

    def quiet_for(self, seconds: float) -> list[Message]:
        """Everything but heartbeats received during ``seconds``."""
        got: list[Message] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.read(left)
            except TimeoutError:
                break
            if message["type"] != "heartbeat":
                got.append(message)
        return got

    def close(self) -> None:
        self.sock.close()


@dataclass
class Broker:
    proc: ServiceProcess
    order_port: int
    http_port: int
    db: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self) -> BrokerClient:
        return BrokerClient(self.order_port)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return http_json(method, self.url + path, body)

    def symbols(self) -> list[str]:
        status, body = self.admin("GET", "/api/symbols")
        assert status == 200
        return [s["symbol"] for s in body]

    def orders(self) -> list[Message]:
        status, body = self.admin("GET", "/admin/orders")
        assert status == 200
        return list(body["orders"])


StartBroker = Callable[..., Broker]


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[StartBroker]:
    started: list[Broker] = []

    def start(*flags: str, db: Path | None = None, name: str = "broker") -> Broker:
        order_port, http_port = free_port(), free_port()
        state = db if db is not None else tmp_path / "state" / "broker.sqlite3"
        argv = [
            "python",
            "-m",
            "mockstack.broker",
            "--order-port",
            str(order_port),
            "--http-port",
            str(http_port),
            "--state-db",
            str(state),
            "--heartbeat-interval",
            "0.2",
            *flags,
        ]
        proc = start_service(
            name,
            argv,
            tmp_path / "logs",
            health_url=f"http://127.0.0.1:{http_port}/health",
            ports={"order": order_port, "http": http_port},
        )
        broker = Broker(proc, order_port, http_port, state)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.proc.stop()


@pytest.fixture
def broker(start_broker: StartBroker) -> Broker:
    return start_broker()


def test_hello_welcome_and_heartbeats_both_ways(broker: Broker) -> None:
    client = broker.client()
    client.send({"type": "heartbeat", "seq": 1})
    assert client.read()["type"] == "error"  # hello first
    welcome = client.hello()
    assert welcome["heartbeat_interval"] == 0.2 and welcome["session_id"]
    client.send({"type": "heartbeat", "seq": 41})
    echoes = [client.expect("heartbeat") for _ in range(4)]
    assert {"type": "heartbeat", "seq": 41} in echoes
    assert any(m["seq"] != 41 for m in echoes)  # the broker's own, unsolicited ones
    status, health = broker.admin("GET", "/health")
    assert status == 200 and set(health["checks"]) == {"order_listener", "state_db"}


def test_place_ack_then_partial_then_final_fill(broker: Broker) -> None:
    symbol = broker.symbols()[0]
    client = broker.client()
    client.hello()
    ack = client.place("it-1", symbol, qty=10, price=123.5)
    assert ack == {
        "type": "ack",
        "order_id": ack["order_id"],
        "idempotency_key": "it-1",
        "status": "accepted",
        "duplicate": False,
    }
    first, second = client.expect("fill"), client.expect("fill")
    assert (first["qty"], first["cum_qty"], first["leaves_qty"], first["status"]) == (5, 5, 5, "partially_filled")
    assert (second["qty"], second["cum_qty"], second["leaves_qty"], second["status"]) == (5, 10, 0, "filled")
    assert first["price"] == second["price"] == 123.5 and first["fill_id"] != second["fill_id"]
    client.send({"type": "positions"})
    assert client.expect("positions")["positions"] == {symbol: 10}
    client.send({"type": "orders"})
    [row] = client.expect("orders")["orders"]
    assert (row["order_id"], row["filled_qty"], row["status"]) == (ack["order_id"], 10, "filled")


def test_duplicate_key_never_double_fills_across_sessions(broker: Broker) -> None:
    symbol = broker.symbols()[1]
    first = broker.client()
    first.hello("a")
    ack = first.place("dup-1", symbol, qty=4)
    again = first.place("dup-1", symbol, qty=4)
    assert again == {**ack, "duplicate": True}
    assert [first.expect("fill")["status"], first.expect("fill")["status"]] == ["partially_filled", "filled"]
    first.close()
    second = broker.client()
    second.hello("b")
    assert second.place("dup-1", symbol, qty=4) == {**ack, "duplicate": True}
    assert second.quiet_for(0.3) == []
    [order] = broker.orders()
    assert order["filled_qty"] == 4 and [f["qty"] for f in order["fills"]] == [2, 2]
    assert broker.admin("GET", "/admin/positions") == (200, {"positions": {symbol: 4}})


def test_duplicate_key_after_kill_9_and_restart(start_broker: StartBroker, tmp_path: Path) -> None:
    broker = start_broker("--fill-latency-ms", "1500", "--no-cancel-on-disconnect")
    symbol = broker.symbols()[0]
    client = broker.client()
    client.hello("tr")
    ack = client.place("crash-1", symbol, qty=6)
    done = client.place("crash-2", symbol, qty=1)
    assert ack["type"] == done["type"] == "ack"
    broker.proc.kill()  # kill -9 before any fill
    client.close()

    # working orders resume after the restart; fills reach the reconnected session of the same client_id
    again = start_broker("--fill-latency-ms", "1000", db=broker.db, name="broker-restarted")
    client = again.client()
    client.hello("tr")
    assert client.place("crash-1", symbol, qty=6) == {**ack, "duplicate": True}
    fills = [client.expect("fill", timeout=5), client.expect("fill", timeout=5), client.expect("fill", timeout=5)]
    by_order: dict[str, list[int]] = {}
    for f in fills:
        by_order.setdefault(f["order_id"], []).append(f["qty"])
    assert by_order == {ack["order_id"]: [3, 3], done["order_id"]: [1]}
    assert client.place("crash-2", symbol, qty=1) == {**done, "duplicate": True}
    assert client.quiet_for(0.3) == []
    again.proc.kill()  # and once more, after everything filled
    client.close()

    third = start_broker(db=broker.db, name="broker-third")
    client = third.client()
    client.hello("tr")
    assert client.place("crash-1", symbol, qty=6) == {**ack, "duplicate": True}
    assert client.quiet_for(0.3) == []
    orders = {o["order_id"]: o for o in third.orders()}
    assert orders[ack["order_id"]]["filled_qty"] == 6 and len(orders[ack["order_id"]]["fills"]) == 2
    assert len(orders) == 2
    client.send({"type": "positions"})
    assert client.expect("positions")["positions"] == {symbol: 7}


def test_malformed_line_gets_an_error_and_the_session_survives(broker: Broker) -> None:
    symbol = broker.symbols()[0]
    client = broker.client()
    client.hello()
    for raw in (b"this is not json\n", b"[1,2,3]\n", b'{"no_type": true}\n', b'{"type": "dance"}\n'):
        client.send_raw(raw)
        error = client.expect("error")
        assert error["code"] == "malformed" and error["detail"]
    assert client.place("after-garbage", symbol)["type"] == "ack"


def test_reject_reasons(broker: Broker) -> None:
    symbols = broker.symbols()
    client = broker.client()
    client.hello()
    unknown = client.place("r-1", "NOT-A-SYMBOL")
    assert (unknown["type"], unknown["reason"]) == ("reject", "unknown_symbol")
    big = client.place("r-2", symbols[0], qty=1001)
    assert (big["reason"], big["idempotency_key"]) == ("size_limit", "r-2")
    client.send(
        {"type": "place", "idempotency_key": "r-3", "symbol": symbols[0], "side": "hold", "qty": 1, "limit_price": 1.0}
    )
    invalid = client.expect("reject")
    assert invalid["reason"] == "invalid_order" and invalid["field"] == "side" and "side" in invalid["detail"]
    assert broker.admin("POST", "/admin/reject-rate", {"rate": 1.0}) == (200, {"rate": 1.0, "previous": 0.0})
    random_reject = client.place("r-4", symbols[0])
    assert random_reject["reason"] == "random_reject"
    assert client.place("r-4", symbols[0]) == {**random_reject, "duplicate": True}
    broker.admin("POST", "/admin/reject-rate", {"rate": 0.0})
    assert client.place("r-5", symbols[0])["type"] == "ack"


def test_rate_limit(start_broker: StartBroker) -> None:
    broker = start_broker("--max-orders-per-second", "5", "--fill-latency-ms", "5000")
    symbol = broker.symbols()[0]
    client = broker.client()
    client.hello()
    answers = [client.place(f"burst-{i}", symbol, qty=1) for i in range(8)]
    assert [a["type"] for a in answers[:5]] == ["ack"] * 5
    assert {a.get("reason") for a in answers[5:]} == {"rate_limit"}


def test_cancel_and_cancel_on_disconnect(broker: Broker) -> None:
    symbol = broker.symbols()[0]
    assert broker.admin("POST", "/admin/fill-latency", {"ms": 5000}) == (200, {"ms": 5000, "previous": 50})
    client = broker.client()
    client.hello("tr")
    first = client.place("c-1", symbol)
    client.send({"type": "cancel", "order_id": first["order_id"]})
    cancelled = client.expect("cancelled")
    assert (cancelled["order_id"], cancelled["idempotency_key"]) == (first["order_id"], "c-1")
    client.send({"type": "cancel", "order_id": first["order_id"]})
    assert client.expect("reject")["reason"] == "not_working"
    client.send({"type": "cancel", "order_id": "O-424242"})
    assert client.expect("reject")["reason"] == "unknown_order"

    working = client.place("c-2", symbol)
    client.close()
    _wait_for(lambda: _status(broker, working["order_id"]) == "cancelled")

    assert broker.admin("POST", "/admin/cancel-on-disconnect", {"enabled": False}) == (
        200,
        {"enabled": False, "previous": True},
    )
    client = broker.client()
    client.hello("tr")
    kept = client.place("c-3", symbol)
    client.close()
    time.sleep(0.3)
    assert _status(broker, kept["order_id"]) == "accepted"


def test_injected_position_shows_in_positions(broker: Broker) -> None:
    symbol = broker.symbols()[2]
    assert broker.admin("POST", "/admin/positions", {"symbol": symbol, "qty": -30}) == (
        200,
        {"positions": {symbol: -30}},
    )
    client = broker.client()
    client.hello()
    client.send({"type": "positions"})
    assert client.expect("positions")["positions"] == {symbol: -30}
    status, metrics = broker.admin("GET", "/metrics")
    assert f'broker_position{{symbol="{symbol}"}} -30.0' in metrics
    assert broker.admin("DELETE", f"/admin/positions/{symbol}") == (200, {"positions": {}})
    assert broker.admin("DELETE", f"/admin/positions/{symbol}")[0] == 404
    assert broker.admin("POST", "/admin/positions", {"symbol": symbol, "qty": "many"})[1]["field"] == "qty"


def test_metrics_are_exposed(broker: Broker) -> None:
    symbol = broker.symbols()[0]
    client = broker.client()
    client.hello()
    client.place("m-1", symbol, qty=2)
    client.place("m-1", symbol, qty=2)
    client.place("m-2", "NOPE")
    client.expect("fill")
    client.expect("fill")
    status, text = broker.admin("GET", "/metrics")
    assert status == 200
    for needle in (
        "broker_sessions_active 1.0",
        'broker_orders_received_total{result="accepted"} 1.0',
        'broker_orders_received_total{result="duplicate"} 1.0',
        'broker_orders_received_total{result="rejected"} 1.0',
        'broker_rejects_total{reason="unknown_symbol"} 1.0',
        "broker_fills_total 2.0",
        "broker_ack_latency_seconds_count 3.0",
        "broker_reject_rate 0.0",
        "broker_fill_latency_seconds 0.05",
        f'broker_position{{symbol="{symbol}"}} 2.0',
    ):
        assert needle in text, needle


def test_sigterm_exits_0_within_2_seconds(broker: Broker) -> None:
    client = broker.client()
    client.hello()
    started = time.monotonic()
    os.killpg(broker.proc.popen.pid, signal.SIGTERM)
    assert broker.proc.popen.wait(5) == 0
    assert time.monotonic() - started < 2.0
    assert '"event": "broker_stopped"' in broker.proc.log_text()


def test_bad_flag_exits_2_with_one_stderr_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockstack.broker", "--state-db", str(tmp_path / "b.db")],
        env={**os.environ, "BROKER_FILL_LATENCY_MS": "soon"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "BROKER_FILL_LATENCY_MS" in lines[0] and "'soon'" in lines[0]


def _status(broker: Broker, order_id: str) -> str:
    return next(str(o["status"]) for o in broker.orders() if o["order_id"] == order_id)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met within timeout")

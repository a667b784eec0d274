"""The mock engine's broker session: what a request observes of the engine's book is the book as of the broker's
answer, never a later one.

Found by `make test`: the Broker Connection Lost drill's runbook step `traderunner reconcile` reported "GARD
expected 10 actual 11" with nothing wrong. The broker answered 11 (one fill of a sell 2 made), then reported the
second fill; the engine booked it on its session thread before the reconciling thread read the book (10), and
with no order left in flight the reconcile did not look again.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mockstack.common.logging import EventLog
from mockstack.traderunner.broker_connector import BrokerConnector
from mockstack.traderunner.metrics import Metrics


class _Broker:
    """One session on loopback: welcome, then every positions query is answered by a positions reply and, in
    the same write, a fill that the broker made after answering."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rb") as lines:
            lines.readline()  # hello
            conn.sendall(b'{"type": "welcome", "session_id": "S-1", "heartbeat_interval": 5}\n')
            for line in lines:
                if json.loads(line).get("type") == "positions":
                    reply = {"type": "positions", "positions": {"GARD": 11}}
                    fill = {"type": "fill", "symbol": "GARD", "qty": 1, "side": "sell"}
                    conn.sendall((json.dumps(reply) + "\n" + json.dumps(fill) + "\n").encode())

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def broker() -> Iterator[_Broker]:
    b = _Broker()
    yield b
    b.close()


def test_a_request_observes_the_book_before_any_message_the_broker_sent_after_its_answer(broker: _Broker) -> None:
    book = {"GARD": 11}
    booked = threading.Event()
    connected = threading.Event()

    def on_message(msg: dict[str, Any]) -> None:
        if msg.get("type") == "fill":
            book["GARD"] -= int(msg["qty"])  # the engine books the fill on the session thread
            booked.set()

    connector = BrokerConnector(
        "127.0.0.1",
        broker.port,
        client_id="t",
        log=EventLog("t", stream=io.StringIO()),
        metrics=Metrics(),
        on_message=on_message,
        on_connected=connected.set,
    )
    connector.start()
    try:
        assert connected.wait(10)
        reply, observed = connector.request_observed(
            {"type": "positions"}, "positions", 10.0, observe=lambda _reply: dict(book)
        )
        assert booked.wait(10)
        assert reply["positions"] == {"GARD": 11}
        assert observed == {"GARD": 11}  # the book as of the answer: it agrees with the broker
        assert book == {"GARD": 10}  # the later fill was booked, after the observation
        assert connector.request({"type": "positions"}, "positions", 10.0)["positions"] == {"GARD": 11}
    finally:
        connector.stop()

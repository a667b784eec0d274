"""TCP client of the broker's newline-delimited JSON order protocol (see docs/stack-contract.md).

One daemon thread owns the session: it connects (TCP connect + ``hello`` -> ``welcome`` within
``handshake_timeout``, so a proxy that accepts but never answers is a failed attempt), sends a
``heartbeat`` every ``heartbeat_interval``, reads every line and hands it to ``on_message`` (or to a
waiting :meth:`BrokerConnector.request`). Silence longer than ``heartbeat_timeout`` is logged as
``Connection timeout``; EOF or a reset as ``Broker connection lost``. Then it tries ``attempts``
reconnects with doubling backoff (each failure logged ``Reconnect attempt N/M failed: ...``) and
finally logs ``manual intervention required`` and waits for :meth:`request_reconnect`.
Nothing is sent while disconnected: :meth:`send` returns False.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mockstack.common.logging import EventLog
from mockstack.traderunner.metrics import Metrics

Message = dict[str, Any]


class BrokerUnavailable(Exception):
    """No session with the broker (or it dropped while waiting for an answer)."""


class _Waiter:
    def __init__(self, observe: Callable[[Message], Any] | None = None) -> None:
        self.event = threading.Event()
        self.reply: Message | None = None
        self.observe = observe
        self.observed: Any = None


class BrokerConnector:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        log: EventLog,
        metrics: Metrics,
        on_message: Callable[[Message], None],
        on_connected: Callable[[], None],
        heartbeat_timeout: float = 2.0,
        attempts: int = 3,
        backoff: float = 0.5,
        handshake_timeout: float = 1.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.log = log
        self.metrics = metrics
        self.on_message = on_message
        self.on_connected = on_connected
        self.heartbeat_timeout = heartbeat_timeout
        self.attempts = attempts
        self.backoff = backoff
        self.handshake_timeout = handshake_timeout
        self.state = "starting"  # starting | connected | reconnecting | manual_intervention | stopped
        self.session_id: str | None = None
        self.heartbeat_interval = 0.5
        self.last_error = ""
        self.connected_at: float | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._waiters: dict[str, deque[_Waiter]] = {}
        self._waiters_lock = threading.Lock()
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    # --- public API --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="broker-connector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._restart.set()
        self._close()
        if self._thread is not None:
            self._thread.join(2.0)
        self.state = "stopped"

    def request_reconnect(self) -> None:
        """Restart the connector: drop any session, reset the attempt counter, connect now."""
        self.log.info("broker_reconnect_requested", "Broker reconnect requested by operator", state=self.state)
        # The state changes here, BEFORE the connector thread is woken: written after, it could overwrite
        # the "connected" the thread sets once it is back, and orders would stay blocked for good.
        self.state = "reconnecting"
        self._restart.set()
        self._close()

    def send(self, msg: Message) -> bool:
        """Send one message; False when there is no session (nothing is queued)."""
        line = (json.dumps(msg) + "\n").encode()
        with self._send_lock:
            sock = self._sock
            if sock is None or self.state != "connected":
                return False
            try:
                sock.sendall(line)
                return True
            except OSError as exc:
                self.last_error = str(exc)
                return False

    def request(self, msg: Message, reply_type: str, timeout: float = 2.0) -> Message:
        """Send ``msg`` and wait for the next ``reply_type`` message (answers arrive in order)."""
        return self.request_observed(msg, reply_type, timeout)[0]

    def request_observed(
        self, msg: Message, reply_type: str, timeout: float = 2.0, observe: Callable[[Message], Any] | None = None
    ) -> tuple[Message, Any]:
        """:meth:`request`, plus what ``observe(reply)`` returned when the reply was read off the session.

        ``observe`` runs on the session thread, after every message the broker sent before the reply was
        handled and before any message it sent after: what it reads of our own book is the book as of the
        broker's answer (a fill the broker reported after answering is not in it yet), whatever the requester's
        thread does meanwhile.
        """
        waiter = _Waiter(observe)
        with self._waiters_lock:
            self._waiters.setdefault(reply_type, deque()).append(waiter)
        if not self.send(msg):
            self._drop_waiter(reply_type, waiter)
            raise BrokerUnavailable(f"broker not connected ({self.state})")
        if not waiter.event.wait(timeout):
            self._drop_waiter(reply_type, waiter)
            raise BrokerUnavailable(f"no '{reply_type}' answer from the broker within {timeout} s")
        if waiter.reply is None:
            raise BrokerUnavailable("broker session dropped while waiting for an answer")
        return waiter.reply, waiter.observed

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "connected": self.connected,
            "manual_intervention_required": self.state == "manual_intervention",
            "session_id": self.session_id,
            "address": f"{self.host}:{self.port}",
            "last_error": self.last_error,
        }

    # --- internals -----------------------------------------------------------------------------
    def _drop_waiter(self, reply_type: str, waiter: _Waiter) -> None:
        with self._waiters_lock:
            queue = self._waiters.get(reply_type)
            if queue is not None and waiter in queue:
                queue.remove(waiter)

    def _fail_waiters(self) -> None:
        with self._waiters_lock:
            for queue in self._waiters.values():
                while queue:
                    queue.popleft().event.set()

    def _close(self) -> None:
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _set_disconnected(self, state: str) -> None:
        self.state = state
        self.metrics.broker_connected.set(0)
        self._close()
        self._fail_waiters()

    def _handshake(self) -> tuple[socket.socket, bytes]:
        """Connect and exchange hello/welcome within ``handshake_timeout``; raises OSError/ValueError."""
        sock = socket.create_connection((self.host, self.port), timeout=self.handshake_timeout)
        try:
            deadline = time.monotonic() + self.handshake_timeout
            sock.sendall((json.dumps({"type": "hello", "client_id": self.client_id}) + "\n").encode())
            buf = b""
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no welcome within {self.handshake_timeout} s (handshake hangs)")
                sock.settimeout(left)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError as exc:
                    raise TimeoutError(f"no welcome within {self.handshake_timeout} s (handshake hangs)") from exc
                if not chunk:
                    raise ConnectionError("broker closed the connection during the handshake")
                buf += chunk
            line, _, rest = buf.partition(b"\n")
            welcome = json.loads(line)
            if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
                raise ValueError(f"expected 'welcome', got {line[:200]!r}")
            self.session_id = str(welcome.get("session_id"))
            interval = welcome.get("heartbeat_interval")
            if isinstance(interval, int | float) and interval > 0:
                self.heartbeat_interval = float(interval)
            sock.settimeout(0.05)
            return sock, rest
        except BaseException:
            sock.close()
            raise

    def _try_connect(self) -> tuple[socket.socket, bytes] | None:
        try:
            return self._handshake()
        except (OSError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return None

    def _connect_cycle(self, immediate: bool) -> tuple[socket.socket, bytes] | None:
        """One immediate try (start / operator restart), then the backoff attempts, then manual."""
        if immediate:
            got = self._try_connect()
            if got is not None:
                return got
            self.log.error(
                "broker_connect_failed",
                f"Broker connect to {self.host}:{self.port} failed: {self.last_error}",
                error=self.last_error,
            )
        self.state = "reconnecting"
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            if self._stop.wait(delay) or self._restart.is_set():
                return None
            delay *= 2
            self.metrics.reconnect_attempts.inc()
            got = self._try_connect()
            if got is not None:
                return got
            self.log.warning(
                "broker_reconnect_failed",
                f"Reconnect attempt {attempt}/{self.attempts} failed: {self.last_error}",
                attempt=attempt,
                attempts=self.attempts,
                error=self.last_error,
            )
        self.state = "manual_intervention"
        self.metrics.manual_intervention.set(1)
        self.log.critical(
            "broker_manual_intervention",
            f"All {self.attempts} reconnect attempts failed: manual intervention required "
            "(run 'traderunner broker reconnect' once the broker is reachable)",
            error=self.last_error,
        )
        return None

    def _run(self) -> None:
        immediate = True
        while not self._stop.is_set():
            self._restart.clear()
            got = self._connect_cycle(immediate)
            if got is None:
                if self._stop.is_set():
                    break
                if not self._restart.is_set():
                    # manual intervention: wait for the operator
                    while not self._restart.wait(0.2):
                        if self._stop.is_set():
                            return
                self.metrics.manual_intervention.set(0)
                immediate = True
                continue
            sock, rest = got
            with self._send_lock:
                self._sock = sock
            self.state = "connected"
            self.connected_at = time.monotonic()
            self.metrics.broker_connected.set(1)
            self.metrics.manual_intervention.set(0)
            self.log.info(
                "broker_connected",
                f"Broker connected to {self.host}:{self.port} (session {self.session_id})",
                session_id=self.session_id,
            )
            self.on_connected()
            reason = self._session(sock, rest)
            if self._stop.is_set():
                break
            if reason == "restart":
                self._set_disconnected("reconnecting")
                immediate = True
                continue
            self._set_disconnected("reconnecting")
            immediate = False

    def _session(self, sock: socket.socket, buf: bytes) -> str:
        last_rx = time.monotonic()
        next_hb = last_rx
        while True:
            if self._stop.is_set() or self._restart.is_set():
                return "restart"
            now = time.monotonic()
            if now >= next_hb:
                self._seq += 1
                self.send({"type": "heartbeat", "seq": self._seq})
                next_hb = now + self.heartbeat_interval
            if now - last_rx > self.heartbeat_timeout:
                self.last_error = f"no heartbeat for {now - last_rx:.1f} s"
                self.log.error(
                    "broker_connection_timeout",
                    f"Connection timeout: no heartbeat from the broker within {self.heartbeat_timeout} s",
                    timeout=self.heartbeat_timeout,
                )
                return "timeout"
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                if line.strip():
                    self._dispatch(line)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._restart.is_set() or self._stop.is_set():
                    return "restart"
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.log.error(
                    "broker_connection_lost", f"Broker connection lost: {self.last_error}", error=self.last_error
                )
                return "lost"
            if not chunk:
                if self._restart.is_set() or self._stop.is_set():
                    return "restart"
                self.last_error = "connection closed by the broker (EOF)"
                self.log.error(
                    "broker_connection_lost", f"Broker connection lost: {self.last_error}", error=self.last_error
                )
                return "lost"
            last_rx = time.monotonic()
            buf += chunk

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            self.log.warning("broker_bad_message", f"Unparseable line from the broker: {line[:200]!r}")
            return
        if not isinstance(msg, dict):
            return
        kind = str(msg.get("type"))
        if kind == "heartbeat":
            return
        with self._waiters_lock:
            queue = self._waiters.get(kind)
            waiter = queue.popleft() if queue else None
        if waiter is not None:
            if waiter.observe is not None:
                try:
                    waiter.observed = waiter.observe(msg)
                except Exception as exc:  # a handler bug must not kill the session thread
                    self.log.error("broker_message_error", f"Observing the {kind} answer failed: {exc!r}")
            waiter.reply = msg
            waiter.event.set()
            return
        try:
            self.on_message(msg)
        except Exception as exc:  # a handler bug must not kill the session thread
            self.log.error("broker_message_error", f"Handling broker message {kind} failed: {exc!r}", message=msg)

"""The TCP order listener: one asyncio task per connection, heartbeats, fill timers, cancel-on-disconnect.

Everything here runs on the event loop thread; the engine (thread-safe) owns state. Fills of an
order are delivered to the session that placed it, or, once that session is gone, to every live
session of the same ``client_id`` (a reconnecting client gets its fills).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from dataclasses import dataclass, field

from mockstack.broker.engine import Engine, SessionRef
from mockstack.broker.model import Order
from mockstack.broker.protocol import (
    MAX_LINE_BYTES,
    CancelOrder,
    ErrorMessage,
    Fill,
    HeartbeatIn,
    HeartbeatOut,
    Hello,
    InvalidOrder,
    MalformedMessage,
    OrderRow,
    Orders,
    OrdersQuery,
    PlaceOrder,
    Positions,
    PositionsQuery,
    ServerMessage,
    Welcome,
    parse_line,
)
from mockstack.common.logging import EventLog

MAX_WRITE_BUFFER = 4 * 1024 * 1024  # a client that stops reading is dropped beyond this


@dataclass
class Session:
    session_id: str
    peer: str
    writer: asyncio.StreamWriter
    client_id: str | None = None
    closed: bool = False
    heartbeat_task: asyncio.Task[None] | None = None
    ref: SessionRef | None = field(default=None)

    def send(self, message: ServerMessage) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(message.to_line())
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.closed = True
            self.writer.transport.abort()


class OrderServer:
    def __init__(self, engine: Engine, log: EventLog, host: str, port: int, heartbeat_interval: float) -> None:
        self.engine = engine
        self.log = log
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self._server: asyncio.Server | None = None
        self._sessions: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = False
        self._counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_LINE_BYTES)
        self.log.info(
            "order_listener_started",
            f"Order listener on {self.host}:{self.bound_port}",
            host=self.host,
            port=self.bound_port,
        )
        resumed = self.engine.working_orders()
        for order in resumed:
            self._schedule_fill(order.order_id)
        if resumed:
            self.log.info(
                "orders_resumed",
                f"Resumed fills of {len(resumed)} working order(s) from the state database",
                orders=[o.order_id for o in resumed],
            )

    async def stop(self) -> None:
        """Stop listening, drop every session (no cancel-on-disconnect: orders stay working)."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for session in list(self._sessions.values()):
            session.closed = True
            session.writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 0.5)

    # ----------------------------------------------------------------------- connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        session = Session(f"S-{next(self._counter)}-{uuid.uuid4().hex[:8]}", peer, writer)
        self.log.info("session_connected", f"Order connection from {peer}", session_id=session.session_id, peer=peer)
        reason = "closed by client"
        try:
            while not session.closed:
                try:
                    line = await reader.readline()
                except ValueError:
                    session.send(ErrorMessage("malformed", f"line longer than {MAX_LINE_BYTES} bytes"))
                    continue
                if not line or not line.endswith(b"\n"):
                    break
                self._on_line(session, line, time.perf_counter())
        except (ConnectionError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            reason = "broker stopping"
        finally:
            self._disconnected(session, reason)
            if task is not None:
                self._tasks.discard(task)

    def _disconnected(self, session: Session, reason: str) -> None:
        session.closed = True
        if session.heartbeat_task is not None:
            session.heartbeat_task.cancel()
        if self._sessions.pop(session.session_id, None) is not None:
            self.engine.metrics.sessions_active.dec()
        with contextlib.suppress(Exception):
            session.writer.close()
        self.log.warning(
            "session_disconnected",
            f"Order session {session.session_id} disconnected ({reason})",
            session_id=session.session_id,
            client_id=session.client_id,
            peer=session.peer,
            reason=reason,
        )
        if self._stopping or session.client_id is None or not self.engine.cancel_on_disconnect:
            return
        cancelled = self.engine.cancel_session_orders(session.session_id)
        if cancelled:
            self.log.warning(
                "cancel_on_disconnect",
                f"Cancelled {len(cancelled)} working order(s) of disconnected session {session.session_id}",
                session_id=session.session_id,
                orders=[c.order_id for _, c in cancelled],
            )
        for order, message in cancelled:
            self._cancel_timer(order.order_id)
            for other in self._recipients(order):
                other.send(message)

    # ----------------------------------------------------------------------- messages

    def _on_line(self, session: Session, line: bytes, received: float) -> None:
        try:
            message = parse_line(line)
        except InvalidOrder as exc:
            if session.ref is None:
                session.send(ErrorMessage("hello_required", "send hello {client_id} before anything else"))
                return
            session.send(self.engine.invalid(session.ref, exc))
            self.engine.metrics.ack_latency.observe(time.perf_counter() - received)
            return
        except MalformedMessage as exc:
            self.log.warning(
                "malformed_message",
                f"Malformed message: {exc.detail}",
                session_id=session.session_id,
                detail=exc.detail,
            )
            session.send(ErrorMessage("malformed", exc.detail))
            return
        if isinstance(message, Hello):
            self._hello(session, message)
            return
        if session.ref is None:
            session.send(ErrorMessage("hello_required", "send hello {client_id} before anything else"))
            return
        if isinstance(message, HeartbeatIn):
            session.send(HeartbeatOut(message.seq))
        elif isinstance(message, PlaceOrder):
            outcome = self.engine.place(session.ref, message)
            session.send(outcome.answer)
            self.engine.metrics.ack_latency.observe(time.perf_counter() - received)
            if outcome.new_order is not None:
                self._schedule_fill(outcome.new_order.order_id)
        elif isinstance(message, CancelOrder):
            answer = self.engine.cancel(message.order_id)
            self._cancel_timer(message.order_id)
            session.send(answer)
        elif isinstance(message, PositionsQuery):
            session.send(Positions(self.engine.positions()))
        elif isinstance(message, OrdersQuery):
            session.send(Orders(tuple(OrderRow.of(o) for o in self.engine.orders())))

    def _hello(self, session: Session, message: Hello) -> None:
        if session.ref is None:
            session.client_id = message.client_id
            session.ref = SessionRef(session.session_id, message.client_id)
            self._sessions[session.session_id] = session
            self.engine.metrics.sessions_active.inc()
            session.heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeats(session))
            self.log.info(
                "session_started",
                f"Order session {session.session_id} started for client {message.client_id}",
                session_id=session.session_id,
                client_id=message.client_id,
                peer=session.peer,
            )
        session.send(Welcome(session.session_id, self.heartbeat_interval))

    async def _heartbeats(self, session: Session) -> None:
        seq = 0
        while not session.closed:
            await asyncio.sleep(self.heartbeat_interval)
            seq += 1
            session.send(HeartbeatOut(seq))

    # ----------------------------------------------------------------------- fills

    def _schedule_fill(self, order_id: str, delay: float | None = None) -> None:
        assert self._loop is not None
        wait = self.engine.fill_latency_s if delay is None else delay
        self._timers[order_id] = self._loop.call_later(wait, self._fill_step, order_id)

    def _cancel_timer(self, order_id: str) -> None:
        timer = self._timers.pop(order_id, None)
        if timer is not None:
            timer.cancel()

    def _fill_step(self, order_id: str) -> None:
        self._timers.pop(order_id, None)
        if self._stopping:
            return
        try:
            record = self.engine.fill_next(order_id)
        except Exception as exc:  # a failing fill must not kill the loop; it is logged and retried
            self.log.error("fill_failed", f"Fill of {order_id} failed: {exc}", order_id=order_id, error=str(exc))
            self._schedule_fill(order_id, delay=max(self.engine.fill_latency_s, 1.0))
            return
        if record is None:
            return
        order = self.engine.store.order(order_id)
        if order is not None:
            message = Fill.of(record)
            for session in self._recipients(order):
                session.send(message)
        if record.leaves_qty > 0:
            self._schedule_fill(order_id)

    def _recipients(self, order: Order) -> list[Session]:
        own = self._sessions.get(order.session_id)
        if own is not None and not own.closed:
            return [own]
        return [s for s in self._sessions.values() if s.client_id == order.client_id and not s.closed]

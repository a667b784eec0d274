"""The order protocol on the wire: newline-delimited JSON objects, UTF-8, one message per line.

Incoming lines are parsed once, here, into frozen dataclasses (:func:`parse_line`); nothing past
this module sees a raw ``dict``. Outgoing messages are frozen dataclasses with ``to_line()``.
See ``PROTOCOL.md`` beside this file for the full description with example lines.

Errors raised by :func:`parse_line`:

* :class:`MalformedMessage` -- not a JSON object, no/unknown ``type``, or a non-order message with
  a bad field. Answered with ``error {code: "malformed", detail}``; the session stays up.
* :class:`InvalidOrder` -- a ``place`` with a missing or bad field. Answered with ``reject``
  ``{reason: "invalid_order", detail}`` where ``detail`` starts with the field name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from mockstack.broker.model import FillRecord, Order, OrderStatus, RejectReason, Side

MAX_LINE_BYTES = 64 * 1024
MAX_KEY_LENGTH = 200


class ProtocolError(Exception):
    """Base of everything :func:`parse_line` raises."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedMessage(ProtocolError):
    """The line is not a usable message; answered with ``error {code: "malformed"}``."""


class InvalidOrder(ProtocolError):
    """A ``place`` whose field ``field_name`` is missing or invalid."""

    def __init__(self, field_name: str, detail: str, idempotency_key: str | None) -> None:
        super().__init__(detail)
        self.field_name = field_name
        self.idempotency_key = idempotency_key


# --------------------------------------------------------------------------- client -> broker


@dataclass(frozen=True)
class Hello:
    client_id: str


@dataclass(frozen=True)
class HeartbeatIn:
    seq: int


@dataclass(frozen=True)
class PlaceOrder:
    idempotency_key: str
    symbol: str
    side: Side
    qty: int
    limit_price: float


@dataclass(frozen=True)
class CancelOrder:
    order_id: str


@dataclass(frozen=True)
class PositionsQuery:
    pass


@dataclass(frozen=True)
class OrdersQuery:
    pass


ClientMessage = Hello | HeartbeatIn | PlaceOrder | CancelOrder | PositionsQuery | OrdersQuery


def parse_line(line: bytes | str) -> ClientMessage:
    """One received line (with or without its newline) -> a client message, or a ProtocolError."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"line is not valid UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"line is not JSON: {exc.msg} at position {exc.pos}") from exc
    except ValueError as exc:
        raise MalformedMessage(str(exc)) from exc
    if not isinstance(data, dict):
        raise MalformedMessage(f"line must be a JSON object, got {_json_type(data)}")
    kind = data.get("type")
    if kind is None:
        raise MalformedMessage("message lacks the field 'type'")
    if not isinstance(kind, str):
        raise MalformedMessage(f"field 'type' must be a string, got {_json_type(kind)}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise MalformedMessage(f"unknown message type {kind!r}; expected one of {', '.join(sorted(_PARSERS))}")
    message: ClientMessage = parser(data)
    return message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"line contains the non-standard JSON constant {name}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_hello(data: dict[str, Any]) -> Hello:
    client_id = data.get("client_id")
    if _is_int(client_id):
        return Hello(str(client_id))
    if not isinstance(client_id, str) or not client_id.strip():
        raise MalformedMessage("hello needs 'client_id', a non-empty string")
    return Hello(client_id)


def _parse_heartbeat(data: dict[str, Any]) -> HeartbeatIn:
    seq = data.get("seq")
    if not _is_int(seq):
        raise MalformedMessage(f"heartbeat needs 'seq', an integer; got {_json_type(seq)}")
    assert isinstance(seq, int)
    return HeartbeatIn(seq)


def _parse_place(data: dict[str, Any]) -> PlaceOrder:
    key = data.get("idempotency_key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidOrder(
            "idempotency_key",
            f"idempotency_key must be a non-empty string of at most {MAX_KEY_LENGTH} characters, "
            f"got {_json_type(key) if not isinstance(key, str) else repr(key[:40])}",
            None,
        )
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidOrder("symbol", f"symbol must be a non-empty string, got {_json_type(symbol)}", key)
    side = data.get("side")
    if side not in ("buy", "sell"):
        raise InvalidOrder("side", f"side must be 'buy' or 'sell', got {side!r}", key)
    qty = data.get("qty")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        raise InvalidOrder("qty", f"qty must be an integer > 0, got {qty!r}", key)
    price = data.get("limit_price")
    if not isinstance(price, int | float) or isinstance(price, bool) or not math.isfinite(price) or price <= 0:
        raise InvalidOrder("limit_price", f"limit_price must be a number > 0, got {price!r}", key)
    return PlaceOrder(key, symbol, Side(side), qty, float(price))


def _parse_cancel(data: dict[str, Any]) -> CancelOrder:
    order_id = data.get("order_id")
    if _is_int(order_id):
        return CancelOrder(str(order_id))
    if not isinstance(order_id, str) or not order_id:
        raise MalformedMessage(f"cancel needs 'order_id', a non-empty string; got {_json_type(order_id)}")
    return CancelOrder(order_id)


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "hello": _parse_hello,
    "heartbeat": _parse_heartbeat,
    "place": _parse_place,
    "cancel": _parse_cancel,
    "positions": lambda _data: PositionsQuery(),
    "orders": lambda _data: OrdersQuery(),
}


# --------------------------------------------------------------------------- broker -> client


class ServerMessage:
    """Base of outgoing messages: dataclass fields + the wire ``type``."""

    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = getattr(self, f.name)
        return out

    def to_line(self) -> bytes:
        return (json.dumps(self.to_dict(), separators=(",", ":")) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Welcome(ServerMessage):
    type: ClassVar[str] = "welcome"
    session_id: str
    heartbeat_interval: float


@dataclass(frozen=True)
class HeartbeatOut(ServerMessage):
    type: ClassVar[str] = "heartbeat"
    seq: int


@dataclass(frozen=True)
class Ack(ServerMessage):
    type: ClassVar[str] = "ack"
    order_id: str
    idempotency_key: str
    status: str
    duplicate: bool


@dataclass(frozen=True)
class Reject(ServerMessage):
    type: ClassVar[str] = "reject"
    idempotency_key: str | None
    reason: str
    detail: str
    duplicate: bool = False
    field: str | None = None  # the offending field of an invalid_order

    @property
    def reject_reason(self) -> RejectReason:
        return RejectReason(self.reason)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.field is None:
            del out["field"]
        return out


@dataclass(frozen=True)
class CancelReject(ServerMessage):
    type: ClassVar[str] = "reject"
    order_id: str
    reason: str  # "unknown_order" | "not_working"
    detail: str


@dataclass(frozen=True)
class Cancelled(ServerMessage):
    type: ClassVar[str] = "cancelled"
    order_id: str
    idempotency_key: str
    reason: str  # "client" | "disconnect"
    cancelled_qty: int


@dataclass(frozen=True)
class Fill(ServerMessage):
    type: ClassVar[str] = "fill"
    order_id: str
    idempotency_key: str
    fill_id: str
    symbol: str
    side: str
    qty: int
    price: float
    cum_qty: int
    leaves_qty: int
    status: str

    @classmethod
    def of(cls, record: FillRecord) -> Fill:
        return cls(
            record.order_id,
            record.idempotency_key,
            record.fill_id,
            record.symbol,
            record.side.value,
            record.qty,
            record.price,
            record.cum_qty,
            record.leaves_qty,
            record.status.value,
        )


@dataclass(frozen=True)
class Positions(ServerMessage):
    type: ClassVar[str] = "positions"
    positions: dict[str, int]


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    idempotency_key: str
    symbol: str
    side: str
    qty: int
    filled_qty: int
    status: str
    limit_price: float

    @classmethod
    def of(cls, order: Order) -> OrderRow:
        return cls(
            order.order_id,
            order.idempotency_key,
            order.symbol,
            order.side.value,
            order.qty,
            order.filled_qty,
            order.status.value,
            order.limit_price,
        )


@dataclass(frozen=True)
class Orders(ServerMessage):
    type: ClassVar[str] = "orders"
    orders: tuple[OrderRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "orders": [vars(row) for row in self.orders]}


@dataclass(frozen=True)
class ErrorMessage(ServerMessage):
    type: ClassVar[str] = "error"
    code: str  # "malformed" | "hello_required"
    detail: str


ACCEPTED = OrderStatus.ACCEPTED.value

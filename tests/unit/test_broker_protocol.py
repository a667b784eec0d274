"""Parsing and encoding of the broker's JSON-lines order protocol."""

from __future__ import annotations

import json

import pytest

from mockstack.broker.model import FillRecord, OrderStatus, Side
from mockstack.broker.protocol import (
    Ack,
    CancelOrder,
    ErrorMessage,
    Fill,
    HeartbeatIn,
    Hello,
    InvalidOrder,
    MalformedMessage,
    OrderRow,
    Orders,
    OrdersQuery,
    PlaceOrder,
    PositionsQuery,
    Reject,
    parse_line,
)

PLACE = {"type": "place", "idempotency_key": "k1", "symbol": "ABC", "side": "buy", "qty": 10, "limit_price": 12.5}


def line(obj: object) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def test_parses_every_client_message() -> None:
    assert parse_line(line({"type": "hello", "client_id": "tr"})) == Hello("tr")
    assert parse_line(line({"type": "hello", "client_id": 7})) == Hello("7")
    assert parse_line(line({"type": "heartbeat", "seq": 3})) == HeartbeatIn(3)
    assert parse_line(line(PLACE)) == PlaceOrder("k1", "ABC", Side.BUY, 10, 12.5)
    assert parse_line(line({"type": "cancel", "order_id": "O-000001"})) == CancelOrder("O-000001")
    assert parse_line(line({"type": "positions"})) == PositionsQuery()
    assert parse_line('{"type": "orders", "extra": 1}') == OrdersQuery()


def test_integer_price_becomes_float() -> None:
    msg = parse_line(line({**PLACE, "limit_price": 12}))
    assert isinstance(msg, PlaceOrder)
    assert msg.limit_price == 12.0 and isinstance(msg.limit_price, float)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b"\n", "not JSON"),
        (b'{"seq": 1}\n', "lacks the field 'type'"),
        (b'{"type": 5}\n', "'type' must be a string"),
        (b'{"type": "explode"}\n', "unknown message type 'explode'"),
        (b'{"type": "heartbeat", "seq": NaN}\n', "NaN"),
        (b'{"type": "heartbeat", "seq": "1"}\n', "seq"),
        (b'{"type": "hello"}\n', "client_id"),
        (b'{"type": "cancel"}\n', "order_id"),
        (b'\xff\xfe{"type": "hello"}\n', "UTF-8"),
    ],
)
def test_malformed_lines_name_the_problem(raw: bytes, needle: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_line(raw)
    assert needle in info.value.detail


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"symbol": ""}, "symbol"),
        ({"symbol": 3}, "symbol"),
        ({"side": "short"}, "side"),
        ({"qty": 0}, "qty"),
        ({"qty": -5}, "qty"),
        ({"qty": 1.5}, "qty"),
        ({"qty": 10.0}, "qty"),
        ({"qty": True}, "qty"),
        ({"qty": "10"}, "qty"),
        ({"limit_price": 0}, "limit_price"),
        ({"limit_price": -1.0}, "limit_price"),
        ({"limit_price": "1.0"}, "limit_price"),
        ({"limit_price": False}, "limit_price"),
        ({"limit_price": None}, "limit_price"),
    ],
)
def test_invalid_order_names_the_field_and_keeps_the_key(override: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        parse_line(line({**PLACE, **override}))
    assert info.value.field_name == field
    assert info.value.detail.startswith(field)
    assert info.value.idempotency_key == "k1"


@pytest.mark.parametrize("key", [None, "", "   ", 17, "x" * 201])
def test_bad_idempotency_key_is_an_invalid_order_without_key(key: object) -> None:
    data = dict(PLACE)
    if key is None:
        del data["idempotency_key"]
    else:
        data["idempotency_key"] = key
    with pytest.raises(InvalidOrder) as info:
        parse_line(line(data))
    assert info.value.field_name == "idempotency_key"
    assert info.value.idempotency_key is None


def test_missing_field_of_place_is_invalid_order() -> None:
    data = dict(PLACE)
    del data["limit_price"]
    with pytest.raises(InvalidOrder) as info:
        parse_line(line(data))
    assert info.value.field_name == "limit_price"


def decode(raw: bytes) -> dict[str, object]:
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def test_outgoing_messages_are_single_json_lines() -> None:
    assert decode(Ack("O-1", "k", "accepted", True).to_line()) == {
        "type": "ack",
        "order_id": "O-1",
        "idempotency_key": "k",
        "status": "accepted",
        "duplicate": True,
    }
    assert decode(ErrorMessage("malformed", "x").to_line()) == {"type": "error", "code": "malformed", "detail": "x"}


def test_reject_carries_field_only_for_invalid_orders() -> None:
    plain = decode(Reject("k", "size_limit", "too big").to_line())
    assert "field" not in plain and plain["duplicate"] is False
    invalid = decode(Reject(None, "invalid_order", "qty bad", field="qty").to_line())
    assert invalid["field"] == "qty" and invalid["idempotency_key"] is None


def test_fill_and_orders_encoding() -> None:
    record = FillRecord("F-1", "O-1", "k", "ABC", Side.SELL, 3, 9.5, 3, 2, OrderStatus.PARTIALLY_FILLED, "t")
    assert decode(Fill.of(record).to_line()) == {
        "type": "fill",
        "order_id": "O-1",
        "idempotency_key": "k",
        "fill_id": "F-1",
        "symbol": "ABC",
        "side": "sell",
        "qty": 3,
        "price": 9.5,
        "cum_qty": 3,
        "leaves_qty": 2,
        "status": "partially_filled",
    }
    row = OrderRow("O-1", "k", "ABC", "buy", 5, 0, "accepted", 1.0)
    assert decode(Orders((row,)).to_line())["orders"] == [
        {
            "order_id": "O-1",
            "idempotency_key": "k",
            "symbol": "ABC",
            "side": "buy",
            "qty": 5,
            "filled_qty": 0,
            "status": "accepted",
            "limit_price": 1.0,
        }
    ]

"""The admin HTTP handlers, called directly (no sockets)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mockstack.broker.admin import AdminAPI
from mockstack.broker.engine import Engine, SessionRef, Settings
from mockstack.broker.model import Side
from mockstack.broker.protocol import PlaceOrder
from mockstack.broker.store import Store
from mockstack.common.http import HTTPError, Request, Response
from mockstack.common.universe import build_universe

UNIVERSE = build_universe(42, 3)
SYMBOL = UNIVERSE[0].symbol


@pytest.fixture
def admin(tmp_path: Path) -> AdminAPI:
    engine = Engine(Store(tmp_path / "b.sqlite3"), [i.symbol for i in UNIVERSE], Settings(), rng=random.Random(0))
    return AdminAPI(engine, UNIVERSE)


def req(body: dict[str, Any] | None = None, **match: str) -> Request:
    return Request("POST", "/", {}, match, json.dumps(body).encode() if body is not None else b"")


def body(response: Response) -> Any:
    assert response.status == 200
    return json.loads(response.body)


def test_inject_shows_in_positions_and_can_be_removed(admin: AdminAPI) -> None:
    assert body(admin.inject_position(req({"symbol": SYMBOL, "qty": -25}))) == {"positions": {SYMBOL: -25}}
    assert body(admin.get_positions(req())) == {"positions": {SYMBOL: -25}}
    assert body(admin.remove_injection(req(symbol=SYMBOL))) == {"positions": {}}
    with pytest.raises(HTTPError) as info:
        admin.remove_injection(req(symbol=SYMBOL))
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"qty": 1}, "symbol"),
        ({"symbol": "NOPE", "qty": 1}, "symbol"),
        ({"symbol": SYMBOL}, "qty"),
        ({"symbol": SYMBOL, "qty": 1.5}, "qty"),
        ({"symbol": SYMBOL, "qty": 0}, "qty"),
    ],
)
def test_inject_validates(admin: AdminAPI, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(HTTPError) as info:
        admin.inject_position(req(payload))
    assert (info.value.status, info.value.field_name) == (400, field)


def test_settings_answer_new_and_previous(admin: AdminAPI) -> None:
    assert body(admin.set_reject_rate(req({"rate": 0.5}))) == {"rate": 0.5, "previous": 0.0}
    assert body(admin.set_fill_latency(req({"ms": 2000}))) == {"ms": 2000, "previous": 50}
    assert body(admin.set_cancel_on_disconnect(req({"enabled": False}))) == {"enabled": False, "previous": True}
    assert admin.engine.reject_rate == 0.5 and admin.engine.fill_latency_s == 2.0
    assert admin.engine.cancel_on_disconnect is False


@pytest.mark.parametrize(
    ("handler", "payload", "field"),
    [
        ("set_reject_rate", {"rate": 1.5}, "rate"),
        ("set_reject_rate", {"rate": "high"}, "rate"),
        ("set_reject_rate", {}, "rate"),
        ("set_fill_latency", {"ms": -1}, "ms"),
        ("set_fill_latency", {"ms": True}, "ms"),
        ("set_cancel_on_disconnect", {"enabled": 1}, "enabled"),
    ],
)
def test_settings_validate(admin: AdminAPI, handler: str, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(HTTPError) as info:
        getattr(admin, handler)(req(payload))
    assert (info.value.status, info.value.field_name) == (400, field)


def test_orders_include_their_fills(admin: AdminAPI) -> None:
    new = admin.engine.place(SessionRef("S-1", "c"), PlaceOrder("k1", SYMBOL, Side.BUY, 4, 10.0)).new_order
    assert new is not None
    admin.engine.fill_next(new.order_id)
    orders = body(admin.get_orders(req()))["orders"]
    assert len(orders) == 1
    assert orders[0]["status"] == "partially_filled" and orders[0]["filled_qty"] == 2
    assert [f["qty"] for f in orders[0]["fills"]] == [2]


def test_symbols_match_the_universe(admin: AdminAPI) -> None:
    assert [s["symbol"] for s in body(admin.get_symbols(req()))] == [i.symbol for i in UNIVERSE]

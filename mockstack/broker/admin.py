"""The broker's admin HTTP API (drills use it to inject incidents), on the shared ServiceHTTP base."""

from __future__ import annotations

import math
from typing import Any

from mockstack.broker.engine import Engine
from mockstack.broker.model import Order
from mockstack.common.http import HTTPError, Request, Response, ServiceHTTP, require_field
from mockstack.common.universe import Instrument


def _number(data: dict[str, Any], name: str) -> float:
    value = require_field(data, name, (int, float))
    if not math.isfinite(value):
        raise HTTPError(400, f"field '{name}' must be a finite number, got {value}", name)
    return float(value)


class AdminAPI:
    def __init__(self, engine: Engine, universe: tuple[Instrument, ...]) -> None:
        self.engine = engine
        self.universe = universe

    def register(self, http: ServiceHTTP) -> None:
        http.route("GET", "/admin/positions", self.get_positions)
        http.route("POST", "/admin/positions", self.inject_position)
        http.route("DELETE", r"/admin/positions/(?P<symbol>[^/]+)", self.remove_injection)
        http.route("GET", "/admin/orders", self.get_orders)
        http.route("POST", "/admin/reject-rate", self.set_reject_rate)
        http.route("GET", "/admin/reject-rate", self.get_reject_rate)
        http.route("POST", "/admin/fill-latency", self.set_fill_latency)
        http.route("GET", "/admin/fill-latency", self.get_fill_latency)
        http.route("POST", "/admin/cancel-on-disconnect", self.set_cancel_on_disconnect)
        http.route("GET", "/admin/cancel-on-disconnect", self.get_cancel_on_disconnect)
        http.route("GET", "/api/symbols", self.get_symbols)

    def get_positions(self, _: Request) -> Response:
        return Response.json({"positions": self.engine.positions()})

    def inject_position(self, request: Request) -> Response:
        data = request.json()
        symbol = require_field(data, "symbol", str)
        qty = require_field(data, "qty", int)
        if symbol not in self.engine.symbols:
            raise HTTPError(400, f"unknown symbol {symbol!r}; known: {', '.join(self.engine.symbols)}", "symbol")
        if qty == 0:
            raise HTTPError(400, "field 'qty' must be a non-zero integer (negative = short)", "qty")
        return Response.json({"positions": self.engine.inject_position(symbol, qty)})

    def remove_injection(self, request: Request) -> Response:
        symbol = request.match["symbol"]
        if not self.engine.remove_injection(symbol):
            raise HTTPError(404, f"no injected position for symbol {symbol!r}", "symbol")
        return Response.json({"positions": self.engine.positions()})

    def get_orders(self, _: Request) -> Response:
        fills_by_order: dict[str, list[dict[str, Any]]] = {}
        for f in self.engine.fills():
            fills_by_order.setdefault(f.order_id, []).append(
                {
                    "fill_id": f.fill_id,
                    "qty": f.qty,
                    "price": f.price,
                    "cum_qty": f.cum_qty,
                    "leaves_qty": f.leaves_qty,
                    "status": f.status.value,
                    "ts": f.ts,
                }
            )
        return Response.json(
            {"orders": [_order_json(o, fills_by_order.get(o.order_id, [])) for o in self.engine.orders()]}
        )

    def set_reject_rate(self, request: Request) -> Response:
        rate = _number(request.json(), "rate")
        if not 0.0 <= rate <= 1.0:
            raise HTTPError(400, f"field 'rate' must be between 0 and 1, got {rate}", "rate")
        previous = self.engine.set_reject_rate(rate)
        return Response.json({"rate": rate, "previous": previous})

    def get_reject_rate(self, _: Request) -> Response:
        return Response.json({"rate": self.engine.reject_rate})

    def set_fill_latency(self, request: Request) -> Response:
        ms = _number(request.json(), "ms")
        if ms < 0:
            raise HTTPError(400, f"field 'ms' must be >= 0, got {ms}", "ms")
        previous = self.engine.set_fill_latency_ms(ms)
        return Response.json({"ms": _plain(ms), "previous": _plain(previous)})

    def get_fill_latency(self, _: Request) -> Response:
        return Response.json({"ms": _plain(self.engine.fill_latency_s * 1000.0)})

    def set_cancel_on_disconnect(self, request: Request) -> Response:
        enabled = require_field(request.json(), "enabled", bool)
        previous = self.engine.set_cancel_on_disconnect(enabled)
        return Response.json({"enabled": enabled, "previous": previous})

    def get_cancel_on_disconnect(self, _: Request) -> Response:
        return Response.json({"enabled": self.engine.cancel_on_disconnect})

    def get_symbols(self, _: Request) -> Response:
        """The instruments this broker trades (same shape as marketdata's ``/api/symbols``)."""
        return Response.json(
            [{"symbol": i.symbol, "name": i.name, "start_price": i.start_price} for i in self.universe]
        )


def _plain(value: float) -> float | int:
    """Whole numbers as ints (``50`` rather than ``50.0``), anything else unchanged."""
    return int(value) if float(value).is_integer() else value


def _order_json(order: Order, fills: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "idempotency_key": order.idempotency_key,
        "client_id": order.client_id,
        "session_id": order.session_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": order.qty,
        "limit_price": order.limit_price,
        "filled_qty": order.filled_qty,
        "leaves_qty": order.leaves_qty,
        "status": order.status.value,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "fills": fills,
    }

"""The venue's HTTP surface: the Binance spot REST subset ccxt/Freqtrade use, and the admin API.

Exchange endpoints (``/api/...``, ``/sapi/...``) pass the fault gate first (hang, ban, error).
Signatures and API keys are accepted without checking. Parameters come from the query string and,
for POST, from the form-encoded body (as ccxt sends them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from mockstack.common.http import HTTPError, Request, Response, ServiceHTTP
from mockstack.common.logging import EventLog
from mockstack.venue.engine import BinanceError, Engine
from mockstack.venue.faults import Fault, FaultBoard, FaultSpecError, parse_fault
from mockstack.venue.ledger import FillRecord, InsufficientBalance, Order
from mockstack.venue.market import INTERVALS, MAX_KLINES, Market

Handler = Callable[[Request], Response]
MAX_DEPTH = 100


def _q(value: Decimal) -> str:
    return f"{value:.8f}"


def params_of(request: Request) -> dict[str, str]:
    """Query parameters merged with a form-encoded body (body wins)."""
    merged = dict(request.params)
    if request.body:
        merged.update({k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()})
    return merged


def _int_param(params: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; it must be an integer.") from None
    if not low <= value <= high:
        raise BinanceError(-1130, f"Invalid data sent for a parameter: '{name}' must be from {low} to {high}.")
    return value


def order_json(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": _q(order.price),
        "origQty": _q(order.orig_qty),
        "executedQty": _q(order.executed_qty),
        "cummulativeQuoteQty": _q(order.cumm_quote_qty),
        "status": order.status.value,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side.value,
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": order.time_ms,
        "updateTime": order.update_time_ms,
        "isWorking": order.status.working,
        "workingTime": order.time_ms,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "NONE",
    }


def order_full_json(order: Order, fills: list[FillRecord]) -> dict[str, Any]:
    """The ``newOrderRespType=FULL`` reply of ``POST /api/v3/order``."""
    body = order_json(order)
    for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
        body.pop(key)
    body["transactTime"] = order.update_time_ms
    body["fills"] = [
        {
            "price": _q(f.price),
            "qty": _q(f.qty),
            "commission": _q(f.commission),
            "commissionAsset": f.commission_asset,
            "tradeId": f.trade_id,
        }
        for f in fills
    ]
    return body


def trade_json(fill: FillRecord) -> dict[str, Any]:
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": _q(fill.price),
        "qty": _q(fill.qty),
        "quoteQty": _q(fill.quote_qty),
        "commission": _q(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time_ms,
        "isBuyer": fill.side.value == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def symbol_json(market: Market) -> dict[str, Any]:
    return {
        "symbol": market.symbol,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(market.tick_size),
                "maxPrice": "10000000.00000000",
                "tickSize": str(market.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(market.min_qty),
                "maxQty": "9000.00000000",
                "stepSize": str(market.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": str(market.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


class VenueAPI:
    def __init__(self, engine: Engine, faults: FaultBoard, log: EventLog) -> None:
        self.engine = engine
        self.book = engine.book
        self.ledger = engine.ledger
        self.metrics = engine.metrics
        self.faults = faults
        self.log = log

    def register(self, http: ServiceHTTP) -> None:
        exchange: list[tuple[str, str, str, Handler]] = [
            ("GET", "/api/v3/ping", "ping", lambda _: Response.json({})),
            ("GET", "/api/v3/time", "time", self.time),
            ("GET", "/api/v3/exchangeInfo", "exchangeInfo", self.exchange_info),
            ("GET", "/api/v3/klines", "klines", self.klines),
            ("GET", "/api/v3/depth", "depth", self.depth),
            ("GET", "/api/v3/ticker/bookTicker", "bookTicker", self.book_ticker),
            ("GET", "/api/v3/ticker/price", "tickerPrice", self.ticker_price),
            ("GET", "/api/v3/ticker/24hr", "ticker24hr", self.ticker_24hr),
            ("GET", "/sapi/v1/capital/config/getall", "sapi", lambda _: Response.json([])),
            ("GET", "/sapi/v1/margin/allPairs", "sapi", lambda _: Response.json([])),
            ("GET", "/sapi/v1/margin/isolated/allPairs", "sapi", lambda _: Response.json([])),
            ("GET", "/api/v3/account", "account", self.account),
            ("POST", "/api/v3/order", "order", self.new_order),
            ("GET", "/api/v3/order", "order", self.get_order),
            ("DELETE", "/api/v3/order", "order", self.cancel_order),
            ("GET", "/api/v3/openOrders", "openOrders", self.open_orders),
            ("GET", "/api/v3/allOrders", "allOrders", self.all_orders),
            ("GET", "/api/v3/myTrades", "myTrades", self.my_trades),
        ]
        for method, path, endpoint, handler in exchange:
            http.route(method, path, self._exchange(endpoint, handler))
        http.route("GET", "/admin/truth", self.truth)
        http.route("GET", "/admin/faults", self.list_faults)
        http.route("POST", "/admin/faults", self.add_fault)
        http.route("DELETE", "/admin/faults", self.clear_faults)
        http.route("DELETE", r"/admin/faults/(?P<fault_id>[^/]+)", self.clear_fault)
        http.route("POST", "/admin/price-shock", self.price_shock)
        http.route("POST", "/admin/positions", self.book_position)

    # ----------------------------------------------------------------------- the exchange gate

    def _exchange(self, endpoint: str, handler: Handler) -> Handler:
        def gated(request: Request) -> Response:
            refusal = self.faults.gate()
            if refusal is not None:
                self.metrics.refused.labels(status=str(refusal.status)).inc()
                self.metrics.requests.labels(endpoint=endpoint, status=str(refusal.status)).inc()
                headers = () if refusal.retry_after is None else (("Retry-After", str(refusal.retry_after)),)
                if refusal.status >= 500:  # an exchange's edge answers 5xx with a plain page, not a JSON code
                    return Response(refusal.status, refusal.message.encode(), "text/plain", headers)
                return Response.json({"code": -1003, "msg": refusal.message}, refusal.status, headers)
            try:
                response = handler(request)
            except BinanceError as exc:
                response = Response.json({"code": exc.code, "msg": exc.msg}, exc.status)
            self.metrics.requests.labels(endpoint=endpoint, status=str(response.status)).inc()
            return response

        return gated

    # ----------------------------------------------------------------------- public

    def time(self, _: Request) -> Response:
        return Response.json({"serverTime": self.engine.now_ms()})

    def exchange_info(self, request: Request) -> Response:
        markets = list(self.book.markets.values())
        wanted = request.params.get("symbol")
        if wanted:
            self.engine.market(wanted)
            markets = [m for m in markets if m.symbol == wanted]
        return Response.json(
            {
                "timezone": "UTC",
                "serverTime": self.engine.now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                ],
                "exchangeFilters": [],
                "symbols": [symbol_json(m) for m in markets],
            }
        )

    def klines(self, request: Request) -> Response:
        params = request.params
        symbol, _, _ = self.engine.market(params.get("symbol"))
        interval_text = params.get("interval", "")
        if interval_text not in INTERVALS:
            raise BinanceError(-1120, f"Invalid interval; this venue serves {', '.join(INTERVALS)}.")
        limit = _int_param(params, "limit", 500, 1, MAX_KLINES)
        start = _int_param(params, "startTime", None, 0, 2**53)
        end = _int_param(params, "endTime", None, 0, 2**53)
        assert limit is not None
        klines = self.book.klines(
            symbol,
            INTERVALS[interval_text],
            None if start is None else start // 1000,
            None if end is None else end // 1000,
            limit,
        )
        market = self.book.market(symbol)
        return Response.json([k.row(market) for k in klines])

    def depth(self, request: Request) -> Response:
        symbol, _, _ = self.engine.market(request.params.get("symbol"))
        limit = _int_param(request.params, "limit", 100, 1, 5000)
        assert limit is not None
        market = self.book.market(symbol)
        bid, ask = self.book.bid_ask(symbol)
        levels = min(limit, MAX_DEPTH)
        step = market.tick_size * max(1, int(bid * Decimal("0.0001") / market.tick_size))
        size = max(market.min_qty * 10, (Decimal(1000) / ask).quantize(market.step_size))
        bids = [[str(bid - i * step), str(size * (1 + i))] for i in range(levels) if bid - i * step > 0]
        asks = [[str(ask + i * step), str(size * (1 + i))] for i in range(levels)]
        return Response.json({"lastUpdateId": self.engine.now_ms(), "bids": bids, "asks": asks})

    def _symbols(self, request: Request) -> list[str]:
        wanted = request.params.get("symbol")
        if wanted:
            return [self.engine.market(wanted)[0]]
        return list(self.book.markets)

    def book_ticker(self, request: Request) -> Response:
        rows = []
        for symbol in self._symbols(request):
            bid, ask = self.book.bid_ask(symbol)
            rows.append({"symbol": symbol, "bidPrice": str(bid), "bidQty": "1", "askPrice": str(ask), "askQty": "1"})
        return Response.json(rows[0] if request.params.get("symbol") else rows)

    def ticker_price(self, request: Request) -> Response:
        rows = [{"symbol": s, "price": f"{self.book.price(s):.8f}"} for s in self._symbols(request)]
        return Response.json(rows[0] if request.params.get("symbol") else rows)

    def ticker_24hr(self, request: Request) -> Response:
        rows = []
        now_ms = self.engine.now_ms()
        for symbol in self._symbols(request):
            day = self.book.klines(symbol, 86400, limit=1)[-1]
            bid, ask = self.book.bid_ask(symbol)
            last = self.book.price(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "priceChange": f"{last - day.open:.8f}",
                    "priceChangePercent": f"{(last / day.open - 1) * 100:.3f}",
                    "weightedAvgPrice": f"{(day.high + day.low) / 2:.8f}",
                    "lastPrice": f"{last:.8f}",
                    "bidPrice": str(bid),
                    "askPrice": str(ask),
                    "openPrice": f"{day.open:.8f}",
                    "highPrice": f"{day.high:.8f}",
                    "lowPrice": f"{day.low:.8f}",
                    "volume": f"{day.volume:.8f}",
                    "quoteVolume": f"{day.volume * last:.8f}",
                    "openTime": day.open_time * 1000,
                    "closeTime": now_ms,
                    "count": day.trades,
                }
            )
        return Response.json(rows[0] if request.params.get("symbol") else rows)

    # ----------------------------------------------------------------------- private

    def account(self, _: Request) -> Response:
        return Response.json(
            {
                "makerCommission": 0,
                "takerCommission": 0,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.engine.now_ms(),
                "accountType": "SPOT",
                "balances": [
                    {"asset": b.asset, "free": _q(b.free), "locked": _q(b.locked)} for b in self.ledger.balances()
                ],
                "permissions": ["SPOT"],
                "uid": 1,
            }
        )

    def new_order(self, request: Request) -> Response:
        placed = self.engine.place(params_of(request))
        order = placed.order
        if placed.created:
            lost = self.faults.take_lost_ack()
            if lost is not None:
                self.metrics.lost_acks.inc()
                self.log.warning(
                    "order_ack_dropped",
                    f"Order {order.order_id} ({order.client_order_id}) executed ({order.status.value}); "
                    f"its reply is dropped (venue fault {lost.id})",
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    status=order.status.value,
                    fault_id=lost.id,
                )
                return Response(0, b"", drop=True)
        return Response.json(order_full_json(order, self.ledger.fills(order_id=order.order_id)))

    def get_order(self, request: Request) -> Response:
        return Response.json(order_json(self.engine.find(request.params)))

    def cancel_order(self, request: Request) -> Response:
        order = self.engine.cancel(request.params)
        body = order_json(order)
        body["origClientOrderId"] = order.client_order_id
        body["transactTime"] = order.update_time_ms
        return Response.json(body)

    def open_orders(self, request: Request) -> Response:
        symbol = request.params.get("symbol")
        if symbol:
            symbol = self.engine.market(symbol)[0]
        return Response.json([order_json(o) for o in self.ledger.orders(symbol, working_only=True)])

    def all_orders(self, request: Request) -> Response:
        params = request.params
        symbol, _, _ = self.engine.market(params.get("symbol"))
        from_id = _int_param(params, "orderId", None, 0, 2**63)
        start = _int_param(params, "startTime", None, 0, 2**53)
        end = _int_param(params, "endTime", None, 0, 2**53)
        limit = _int_param(params, "limit", 500, 1, 1000)
        assert limit is not None
        orders = [
            o
            for o in self.ledger.orders(symbol)
            if (from_id is None or o.order_id >= from_id)
            and (start is None or o.time_ms >= start)
            and (end is None or o.time_ms <= end)
        ]
        chosen = orders[:limit] if from_id is not None else orders[-limit:]
        return Response.json([order_json(o) for o in chosen])

    def my_trades(self, request: Request) -> Response:
        params = request.params
        symbol, _, _ = self.engine.market(params.get("symbol"))
        order_id = _int_param(params, "orderId", None, 0, 2**63)
        from_id = _int_param(params, "fromId", None, 0, 2**63)
        start = _int_param(params, "startTime", None, 0, 2**53)
        end = _int_param(params, "endTime", None, 0, 2**53)
        limit = _int_param(params, "limit", 500, 1, 1000)
        assert limit is not None
        fills = [
            f
            for f in self.ledger.fills(symbol, order_id)
            if (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time_ms >= start)
            and (end is None or f.time_ms <= end)
        ]
        return Response.json([trade_json(f) for f in fills][-limit:])

    # ----------------------------------------------------------------------- admin

    def truth(self, _: Request) -> Response:
        """Everything the venue knows: orders with their fills, balances, order-less bookings, prices."""
        fills = self.ledger.fills()
        by_order: dict[int, list[dict[str, Any]]] = {}
        for f in fills:
            by_order.setdefault(f.order_id, []).append(trade_json(f))
        prices = {}
        for symbol in self.book.markets:
            bid, ask = self.book.bid_ask(symbol)
            prices[symbol] = {"mid": self.book.price(symbol), "bid": str(bid), "ask": str(ask)}
            self.metrics.price.labels(symbol=symbol).set(self.book.price(symbol))
        return Response.json(
            {
                "orders": [order_json(o) | {"fills": by_order.get(o.order_id, [])} for o in self.ledger.orders()],
                "fills": len(fills),
                "balances": {b.asset: {"free": _q(b.free), "locked": _q(b.locked)} for b in self.ledger.balances()},
                "bookings": [
                    {"asset": b.asset, "amount": _q(b.amount), "reason": b.reason, "time": b.time_ms}
                    for b in self.ledger.bookings()
                ],
                "prices": prices,
                "klines_frozen_at": self.book.frozen_at,
                "faults": [f.to_json(self.faults.now()) for f in self.faults.active()],
            }
        )

    def list_faults(self, _: Request) -> Response:
        return Response.json({"faults": [f.to_json(self.faults.now()) for f in self.faults.active()]})

    def add_fault(self, request: Request) -> Response:
        try:
            spec = parse_fault(request.json())
        except FaultSpecError as exc:
            raise HTTPError(400, str(exc), exc.field) from None
        fault = self.faults.add(spec)
        return Response.json(fault.to_json(self.faults.now()), 201)

    def clear_faults(self, _: Request) -> Response:
        gone = self.faults.clear()
        return Response.json({"cleared": [f.id for f in gone]})

    def clear_fault(self, request: Request) -> Response:
        fault_id = request.match["fault_id"]
        gone = self.faults.clear(fault_id)
        if not gone:
            active = ", ".join(f.id for f in self.faults.active()) or "none"
            raise HTTPError(404, f"no active fault with id {fault_id!r}; active fault ids: {active}", "fault_id")
        return Response.json({"cleared": [f.id for f in gone]})

    def price_shock(self, request: Request) -> Response:
        data = request.json()
        symbol = data.get("symbol")
        if symbol not in self.book.markets:
            raise HTTPError(
                400, f"field 'symbol' must be one of: {', '.join(self.book.markets)}; got {symbol!r}", "symbol"
            )
        pct = data.get("pct")
        if (
            isinstance(pct, bool)
            or not isinstance(pct, int | float)
            or not math.isfinite(pct)
            or not -90 <= pct <= 900
            or pct == 0
        ):
            raise HTTPError(
                400, f"field 'pct' must be a non-zero number of percent from -90 to 900, got {pct!r}", "pct"
            )
        for name in data:
            if name not in ("symbol", "pct"):
                raise HTTPError(400, f"field '{name}' is not a parameter of a price shock; allowed: symbol, pct", name)
        tick, before, after = self.book.shock(symbol, float(pct))
        self.ledger.record_shock(symbol, tick, 1.0 + float(pct) / 100.0)
        self.log.warning(
            "price_shock",
            f"Price shock of {pct:+g}% on {symbol}: {before:.2f} -> {after:.2f}",
            symbol=symbol,
            pct=pct,
            before=before,
            after=after,
        )
        return Response.json({"symbol": symbol, "pct": pct, "before": before, "after": after})

    def book_position(self, request: Request) -> Response:
        data = request.json()
        assets = sorted({m.base for m in self.book.markets.values()} | {m.quote for m in self.book.markets.values()})
        asset = data.get("asset")
        if asset not in assets:
            raise HTTPError(400, f"field 'asset' must be one of: {', '.join(assets)}; got {asset!r}", "asset")
        raw = data.get("amount")
        try:
            amount = Decimal(str(raw)) if isinstance(raw, int | float | str) and not isinstance(raw, bool) else None
        except ArithmeticError:
            amount = None
        if amount is None or not amount.is_finite() or amount == 0:
            raise HTTPError(400, f"field 'amount' must be a non-zero number (negative = debit), got {raw!r}", "amount")
        reason = data.get("reason", "position booked by a drill with no order")
        if not isinstance(reason, str):
            raise HTTPError(400, f"field 'reason' must be a string, got {type(reason).__name__}", "reason")
        for name in data:
            if name not in ("asset", "amount", "reason"):
                raise HTTPError(
                    400, f"field '{name}' is not a parameter of a booking; allowed: asset, amount, reason", name
                )
        try:
            balance = self.ledger.book(asset, amount, reason, self.engine.now_ms())
        except InsufficientBalance as exc:
            raise HTTPError(400, f"field 'amount' would make the {asset} balance negative: {exc}", "amount") from None
        self.log.warning(
            "position_booked",
            f"Booked {amount} {asset} with no order ({reason})",
            asset=asset,
            amount=str(amount),
            reason=reason,
        )
        return Response.json({"asset": asset, "free": _q(balance.free), "locked": _q(balance.locked)})


def fault_event(log: EventLog, metrics_gauge_inc: Callable[[str, int], None]) -> Callable[[str, Fault], None]:
    """The fault board's observer: log every change and keep ``venue_active_faults`` right."""

    def observe(what: str, fault: Fault) -> None:
        kind = fault.spec.kind.value
        metrics_gauge_inc(kind, 1 if what == "added" else -1)
        log.warning(
            f"fault_{what}",
            f"Venue fault {fault.id} ({kind}) {what}",
            fault_id=fault.id,
            kind=kind,
            status=fault.spec.status,
            seconds=fault.spec.seconds,
            count=fault.spec.count,
        )

    return observe

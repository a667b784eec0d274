"""Order rules and matching: validation against the filters, marketable orders fill at once, resting
orders fill when the walk reaches them (the matcher thread), cancels release what an order held."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from mockstack.common.logging import EventLog
from mockstack.venue.ledger import InsufficientBalance, Ledger, NewOrder, Order, OrderGone, Side
from mockstack.venue.market import PriceBook, UnknownSymbol
from mockstack.venue.metrics import VenueMetrics

TIME_IN_FORCE = ("GTC", "IOC", "FOK")
ORDER_TYPES = ("LIMIT", "MARKET")
MATCH_INTERVAL = 0.2
"""Seconds between two passes of the matcher over resting orders."""


class BinanceError(Exception):
    """An exchange-level refusal, answered as ``{"code": code, "msg": msg}`` with ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _decimal(params: Mapping[str, str], name: str, required: bool = True) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        ) from None
    if not value.is_finite() or value <= 0:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; it must be a positive number.")
    return value


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool


class Engine:
    def __init__(self, ledger: Ledger, book: PriceBook, metrics: VenueMetrics, log: EventLog) -> None:
        self.ledger = ledger
        self.book = book
        self.metrics = metrics
        self.log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_match = time.monotonic()

    def now_ms(self) -> int:
        return int(self.book.now() * 1000)

    def market(self, symbol: str | None) -> tuple[str, str, str]:
        if not symbol:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        try:
            m = self.book.market(symbol)
        except UnknownSymbol:
            raise BinanceError(-1121, "Invalid symbol.") from None
        return m.symbol, m.base, m.quote

    # ----------------------------------------------------------------------- orders

    def place(self, params: Mapping[str, str]) -> Placed:
        symbol, base, quote = self.market(params.get("symbol"))
        market = self.book.market(symbol)
        try:
            side = Side(params.get("side", ""))
        except ValueError:
            raise BinanceError(
                -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."
            ) from None
        order_type = params.get("type", "")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, f"Invalid orderType; this venue accepts {', '.join(ORDER_TYPES)}.")
        client_id = params.get("newClientOrderId") or f"venue-{time.time_ns()}"
        previous = self.ledger.order_by_client_id(client_id)
        if previous is not None:
            self.metrics.duplicate_client_ids.inc()
            self.log.warning(
                "order_duplicate_client_id",
                f"Order with clientOrderId {client_id} already exists (orderId {previous.order_id}); "
                "returning it, nothing new booked",
                client_order_id=client_id,
                order_id=previous.order_id,
            )
            return Placed(previous, created=False)
        qty = _decimal(params, "quantity")
        assert qty is not None
        if qty < market.min_qty or not market.on_qty_grid(qty):
            raise BinanceError(
                -1013, f"Filter failure: LOT_SIZE (minQty {market.min_qty}, stepSize {market.step_size}, got {qty})"
            )
        bid, ask = self.book.bid_ask(symbol)
        if order_type == "LIMIT":
            tif = params.get("timeInForce", "")
            if tif not in TIME_IN_FORCE:
                raise BinanceError(
                    -1102,
                    "Mandatory parameter 'timeInForce' was not sent, was empty/null, or "
                    f"malformed; one of {', '.join(TIME_IN_FORCE)}.",
                )
            price = _decimal(params, "price")
            assert price is not None
            if not market.on_price_grid(price):
                raise BinanceError(-1013, f"Filter failure: PRICE_FILTER (tickSize {market.tick_size}, got {price})")
            marketable = price >= ask if side is Side.BUY else price <= bid
        else:
            tif = "GTC"
            price = ask if side is Side.BUY else bid
            marketable = True
        if qty * price < market.min_notional:
            raise BinanceError(
                -1013, f"Filter failure: NOTIONAL (minNotional {market.min_notional}, got {qty * price})"
            )
        if not marketable and tif in ("IOC", "FOK"):
            raise BinanceError(-2010, "Order would immediately expire (IOC/FOK limit not marketable).")
        fill_price = (ask if side is Side.BUY else bid) if marketable else None
        new = NewOrder(client_id, symbol, base, quote, side, order_type, tif, price, qty)
        try:
            with self._lock:
                order, created = self.ledger.place(new, self.now_ms(), fill_price)
        except InsufficientBalance as exc:
            self.metrics.orders.labels(outcome="rejected").inc()
            self.log.warning(
                "order_rejected",
                f"Order {client_id} rejected: insufficient balance ({exc})",
                client_order_id=client_id,
                asset=exc.asset,
            )
            raise BinanceError(-2010, "Account has insufficient balance for requested action.") from None
        if not created:
            self.metrics.duplicate_client_ids.inc()
            return Placed(order, created=False)
        self.metrics.orders.labels(outcome=order.status.value.lower()).inc()
        if order.status.value == "FILLED":
            self.metrics.fills.inc()
        self.log.info(
            "order_placed",
            f"Order {order.order_id} ({client_id}) {side.value} {qty} {symbol} @ {price}: {order.status.value}",
            order_id=order.order_id,
            client_order_id=client_id,
            symbol=symbol,
            side=side.value,
            qty=str(qty),
            price=str(price),
            status=order.status.value,
        )
        return Placed(order, created=True)

    def find(self, params: Mapping[str, str]) -> Order:
        symbol, _, _ = self.market(params.get("symbol"))
        order: Order | None = None
        if params.get("orderId"):
            try:
                order = self.ledger.order(int(params["orderId"]))
            except ValueError:
                raise BinanceError(-1100, "Illegal characters found in parameter 'orderId'.") from None
        elif params.get("origClientOrderId"):
            order = self.ledger.order_by_client_id(params["origClientOrderId"])
        else:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order is None or order.symbol != symbol:
            raise BinanceError(-2013, "Order does not exist.")
        return order

    def cancel(self, params: Mapping[str, str]) -> Order:
        try:
            order = self.find(params)
        except BinanceError as exc:
            if exc.code == -2013:
                raise BinanceError(-2011, "Unknown order sent.") from None
            raise
        market = self.book.market(order.symbol)
        try:
            with self._lock:
                cancelled = self.ledger.cancel(order.order_id, market.base, market.quote, self.now_ms())
        except OrderGone:
            raise BinanceError(-2011, "Unknown order sent.") from None
        self.metrics.orders.labels(outcome="canceled").inc()
        self.log.info(
            "order_cancelled",
            f"Order {order.order_id} ({order.client_order_id}) cancelled",
            order_id=order.order_id,
            client_order_id=order.client_order_id,
        )
        return cancelled

    # ----------------------------------------------------------------------- matching

    def match_once(self) -> int:
        """Fill every resting order the market has reached; returns how many filled."""
        filled = 0
        for order in self.ledger.orders(working_only=True):
            bid, ask = self.book.bid_ask(order.symbol)
            reached = ask <= order.price if order.side is Side.BUY else bid >= order.price
            if not reached:
                continue
            market = self.book.market(order.symbol)
            try:
                with self._lock:
                    done = self.ledger.fill(order.order_id, market.base, market.quote, order.price, self.now_ms())
            except OrderGone:
                continue  # cancelled in between
            filled += 1
            self.metrics.fills.inc()
            self.metrics.orders.labels(outcome="filled").inc()
            self.log.info(
                "order_filled",
                f"Resting order {done.order_id} ({done.client_order_id}) filled at {order.price}",
                order_id=done.order_id,
                client_order_id=done.client_order_id,
                price=str(order.price),
            )
        self.last_match = time.monotonic()
        return filled

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="venue-matcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(MATCH_INTERVAL):
            try:
                self.match_once()
            except Exception as exc:  # the matcher must survive one bad pass; the log says why
                self.log.error("matcher_error", f"Matcher pass failed: {exc}", error=repr(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

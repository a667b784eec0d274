"""The venue's REST subset and admin API, driven through the route table (no socket served)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from mockstack.common.http import Response
from mockstack.common.logging import EventLog
from mockstack.venue.config import VenueConfig
from mockstack.venue.service import VenueService

GENESIS_NOW = 1_800_000_037.0


class Clock:
    def __init__(self) -> None:
        self.t = GENESIS_NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def venue(tmp_path: Path, clock: Clock) -> Iterator[VenueService]:
    config = VenueConfig(http_port=0, state_db=tmp_path / "venue.sqlite", history_seconds=3600)
    service = VenueService(config, EventLog("venue", stream=io.StringIO()), clock=clock)
    try:
        yield service
    finally:
        service.http.stop()
        service.ledger.close()


def call(
    venue: VenueService,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> Response:
    raw = urlencode(form).encode() if form is not None else json.dumps(body).encode() if body is not None else b""
    return venue.http.dispatch(method, path, {k: str(v) for k, v in (params or {}).items()}, raw)


def ok(response: Response) -> Any:
    assert response.status in (200, 201), response.body
    return json.loads(response.body)


def order_form(venue: VenueService, side: str, qty: str, cross: bool, client_id: str) -> dict[str, str]:
    bid, ask = venue.book.bid_ask("BTCUSDT")
    if side == "BUY":
        price = ask + Decimal("10") if cross else bid - Decimal("500")
    else:
        price = bid - Decimal("10") if cross else ask + Decimal("500")
    return {
        "symbol": "BTCUSDT",
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": str(price),
        "newClientOrderId": client_id,
        "newOrderRespType": "FULL",
    }


def balances(venue: VenueService) -> dict[str, tuple[Decimal, Decimal]]:
    rows = ok(call(venue, "GET", "/api/v3/account"))["balances"]
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in rows}


def test_exchange_info_publishes_the_three_filters(venue: VenueService) -> None:
    info = ok(call(venue, "GET", "/api/v3/exchangeInfo"))
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    kinds = {f["filterType"]: f for f in btc["filters"]}
    assert set(kinds) == {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    assert kinds["PRICE_FILTER"]["tickSize"] == "0.01"
    assert kinds["LOT_SIZE"]["stepSize"] == "0.00001" and kinds["NOTIONAL"]["minNotional"] == "5"


def test_klines_rows_and_bad_interval(venue: VenueService) -> None:
    rows = ok(call(venue, "GET", "/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1m", "limit": 3}))
    assert len(rows) == 3 and all(len(r) == 12 for r in rows)
    assert rows[-1][0] // 1000 <= GENESIS_NOW < rows[-1][6] / 1000
    bad = call(venue, "GET", "/api/v3/klines", {"symbol": "ETHUSDT", "interval": "7m"})
    assert bad.status == 400 and json.loads(bad.body)["code"] == -1120


def test_sapi_endpoints_answer_empty_lists(venue: VenueService) -> None:
    for path in ("/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs"):
        assert ok(call(venue, "GET", path)) == []


def test_marketable_buy_fills_at_once_and_moves_balances(venue: VenueService) -> None:
    reply = ok(call(venue, "POST", "/api/v3/order", form=order_form(venue, "BUY", "0.01", True, "c-1")))
    assert reply["status"] == "FILLED" and reply["executedQty"] == "0.01000000"
    assert len(reply["fills"]) == 1
    fill_price = Decimal(reply["fills"][0]["price"])
    assert fill_price < Decimal(reply["price"]), "a marketable buy fills at the ask, not its limit"
    bal = balances(venue)
    assert bal["BTC"] == (Decimal("0.01"), 0)
    assert bal["USDT"] == (Decimal(10000) - Decimal("0.01") * fill_price, 0)


def test_repeated_client_order_id_returns_the_original_and_never_fills_twice(venue: VenueService) -> None:
    form = order_form(venue, "BUY", "0.01", True, "same-id")
    first = ok(call(venue, "POST", "/api/v3/order", form=form))
    second = ok(call(venue, "POST", "/api/v3/order", form=form))
    assert second["orderId"] == first["orderId"] and second["fills"] == first["fills"]
    truth = ok(call(venue, "GET", "/admin/truth"))
    assert len(truth["orders"]) == 1 and truth["fills"] == 1
    assert Decimal(truth["balances"]["BTC"]["free"]) == Decimal("0.01")


def test_resting_order_locks_funds_fills_when_reached_and_cancel_releases(venue: VenueService, clock: Clock) -> None:
    resting = ok(call(venue, "POST", "/api/v3/order", form=order_form(venue, "BUY", "0.01", False, "r-1")))
    assert resting["status"] == "NEW" and resting["fills"] == []
    locked = Decimal("0.01") * Decimal(resting["price"])
    assert balances(venue)["USDT"] == (Decimal(10000) - locked, locked)
    got = ok(call(venue, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "r-1"}))
    assert got["orderId"] == resting["orderId"] and got["isWorking"] is True
    cancelled = ok(call(venue, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]}))
    assert cancelled["status"] == "CANCELED"
    assert balances(venue)["USDT"] == (Decimal(10000), 0)
    again = call(venue, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    assert again.status == 400 and json.loads(again.body)["code"] == -2011
    # A resting buy fills once the market falls to it (a shock does it at once).
    resting = ok(call(venue, "POST", "/api/v3/order", form=order_form(venue, "BUY", "0.01", False, "r-2")))
    ok(call(venue, "POST", "/admin/price-shock", body={"symbol": "BTCUSDT", "pct": -5}))
    assert venue.engine.match_once() == 1
    got = ok(call(venue, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]}))
    assert got["status"] == "FILLED"
    trades = ok(call(venue, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}))
    assert [t["orderId"] for t in trades] == [resting["orderId"]] and trades[0]["isMaker"] is True
    assert trades[0]["price"] == got["price"]


def test_orders_must_be_covered_by_the_balance(venue: VenueService) -> None:
    too_big = call(venue, "POST", "/api/v3/order", form=order_form(venue, "BUY", "1", True, "big"))
    assert too_big.status == 400 and json.loads(too_big.body)["code"] == -2010
    no_btc = call(venue, "POST", "/api/v3/order", form=order_form(venue, "SELL", "0.01", True, "sell"))
    assert no_btc.status == 400 and json.loads(no_btc.body)["code"] == -2010
    assert ok(call(venue, "GET", "/admin/truth"))["orders"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"quantity": "0.000001"}, -1013),
        ({"price": "60000.001"}, -1013),
        ({"quantity": "0.00001"}, -1013),
        ({"symbol": "XRPUSDT"}, -1121),
        ({"side": "HOLD"}, -1102),
        ({"type": "STOP"}, -1116),
        ({"quantity": "abc"}, -1100),
    ],
)
def test_filter_and_parameter_failures(venue: VenueService, change: dict[str, str], code: int) -> None:
    form = order_form(venue, "BUY", "0.01", True, "f") | change
    reply = call(venue, "POST", "/api/v3/order", form=form)
    assert reply.status == 400 and json.loads(reply.body)["code"] == code


def test_lost_ack_executes_the_order_and_drops_the_reply(venue: VenueService) -> None:
    ok(call(venue, "POST", "/admin/faults", body={"kind": "lost_ack", "count": 1}))
    form = order_form(venue, "BUY", "0.01", True, "lost-1")
    dropped = call(venue, "POST", "/api/v3/order", form=form)
    assert dropped.drop is True
    truth = ok(call(venue, "GET", "/admin/truth"))
    assert [o["clientOrderId"] for o in truth["orders"]] == ["lost-1"] and truth["orders"][0]["status"] == "FILLED"
    retry = ok(call(venue, "POST", "/api/v3/order", form=form))
    assert retry["clientOrderId"] == "lost-1" and ok(call(venue, "GET", "/admin/truth"))["fills"] == 1


def test_ban_answers_418_with_retry_after_and_admin_still_works(venue: VenueService) -> None:
    ok(call(venue, "POST", "/admin/faults", body={"kind": "ban", "status": 418, "seconds": 60}))
    refused = call(venue, "GET", "/api/v3/time")
    assert refused.status == 418 and ("Retry-After", "60") in refused.headers
    assert json.loads(refused.body)["code"] == -1003
    assert ok(call(venue, "GET", "/admin/faults"))["faults"][0]["kind"] == "ban"
    ok(call(venue, "DELETE", "/admin/faults"))
    assert call(venue, "GET", "/api/v3/time").status == 200


def test_stale_klines_fault_freezes_candles(venue: VenueService, clock: Clock) -> None:
    fault = ok(call(venue, "POST", "/admin/faults", body={"kind": "stale_klines"}))
    before = ok(call(venue, "GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}))
    clock.t += 120
    assert ok(call(venue, "GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1})) == before
    ok(call(venue, "DELETE", f"/admin/faults/{fault['id']}"))
    after = ok(call(venue, "GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}))
    assert after[0][0] > before[0][0]


def test_position_booked_without_an_order_shows_in_the_truth(venue: VenueService) -> None:
    ok(call(venue, "POST", "/admin/positions", body={"asset": "ETH", "amount": "0.5"}))
    truth = ok(call(venue, "GET", "/admin/truth"))
    assert truth["orders"] == [] and truth["balances"]["ETH"]["free"] == "0.50000000"
    assert truth["bookings"][0]["asset"] == "ETH"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/faults", {"kind": "ban", "status": 500, "seconds": 5}, "status"),
        ("/admin/price-shock", {"symbol": "DOGEUSDT", "pct": 5}, "symbol"),
        ("/admin/price-shock", {"symbol": "BTCUSDT", "pct": 0}, "pct"),
        ("/admin/positions", {"asset": "BTC", "amount": "lots"}, "amount"),
        ("/admin/positions", {"asset": "BTC", "amount": -1}, "amount"),
        ("/admin/positions", {"asset": "XYZ", "amount": 1}, "asset"),
    ],
)
def test_admin_calls_with_bad_parameters_get_400_naming_the_field(
    venue: VenueService, path: str, body: dict[str, Any], field: str
) -> None:
    reply = call(venue, "POST", path, body=body)
    assert reply.status == 400
    error = json.loads(reply.body)
    assert error["field"] == field and field in error["error"]


def test_unknown_fault_id_is_a_404_listing_the_active_ones(venue: VenueService) -> None:
    fault = ok(call(venue, "POST", "/admin/faults", body={"kind": "lost_ack"}))
    reply = call(venue, "DELETE", "/admin/faults/V-999")
    assert reply.status == 404 and fault["id"] in json.loads(reply.body)["error"]


def test_state_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    config = VenueConfig(http_port=0, state_db=tmp_path / "v.sqlite", history_seconds=600)
    first = VenueService(config, EventLog("venue", stream=io.StringIO()), clock=clock)
    ok(call(first, "POST", "/api/v3/order", form=order_form(first, "BUY", "0.01", True, "keep")))
    genesis = first.book.genesis
    first.http.stop()
    first.ledger.close()
    clock.t += 30
    second = VenueService(config, EventLog("venue", stream=io.StringIO()), clock=clock)
    try:
        assert second.book.genesis == genesis
        assert [o["clientOrderId"] for o in ok(call(second, "GET", "/admin/truth"))["orders"]] == ["keep"]
        assert balances(second)["BTC"][0] == Decimal("0.01")
    finally:
        second.http.stop()
        second.ledger.close()

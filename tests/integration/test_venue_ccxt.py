"""ccxt's own ``binance`` class, pointed at the real venue process on 127.0.0.1, does all Freqtrade needs.

Every URL of ``ccxt.binance().urls['api']`` is swapped for the venue (as the Freqtrade example's
config generator does), so a request that escaped to another host would fail loudly here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.processes import ServiceProcess, free_port, http_json, start_service

ccxt = pytest.importorskip("ccxt", reason="ccxt is in the dev extra: pip install -e '.[dev]'")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str]]:
    work = tmp_path_factory.mktemp("venue")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        "python",
        "-m",
        "mockstack.venue",
        "--http-port",
        str(port),
        "--state-db",
        str(work / "venue.sqlite"),
        "--history-seconds",
        "7200",
    ]
    proc = start_service("venue", argv, work, health_url=f"{base}/health", ports={"http": port})
    try:
        yield proc, base
    finally:
        proc.stop()


def exchange(base: str, **options: Any) -> Any:
    ex = ccxt.binance(
        {
            "apiKey": "stubkey",
            "secret": "stubsecret",
            "timeout": 3000,
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot"]}, **options},
        }
    )
    urls = ex.urls["api"]
    ex.urls["api"] = {key: base + "/" + url.split("/", 3)[3] for key, url in urls.items()}
    assert all(url.startswith("http://127.0.0.1:") for url in ex.urls["api"].values())
    return ex


def test_ccxt_does_everything_freqtrade_needs(venue: tuple[ServiceProcess, str]) -> None:
    _, base = venue
    ex = exchange(base)
    markets = ex.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert btc["precision"]["price"] == 0.01 and btc["limits"]["cost"]["min"] == 5
    ex.fetch_currencies()  # sapi capital/config/getall answers []

    candles = ex.fetch_ohlcv("BTC/USDT", "1m", limit=10)
    assert len(candles) == 10 and all(c[0] % 60_000 == 0 for c in candles)
    assert candles[-1][0] <= ex.milliseconds() < candles[-1][0] + 60_000, "the last candle is still open"
    book = ex.fetch_order_book("BTC/USDT", 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert ex.fetch_balance()["USDT"]["free"] == 10000

    ask = book["asks"][0][0]
    filled = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(ask * 1.01, 2), {"newClientOrderId": "ft-1"})
    assert filled["status"] == "closed" and filled["filled"] == 0.001 and filled["clientOrderId"] == "ft-1"
    assert filled["trades"] and filled["average"] <= round(ask * 1.01, 2)
    again = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(ask * 1.01, 2), {"newClientOrderId": "ft-1"})
    assert again["id"] == filled["id"], "a repeated clientOrderId returns the original order"

    resting = ex.create_order("BTC/USDT", "limit", "sell", 0.001, round(ask * 1.2, 2), {"newClientOrderId": "ft-2"})
    assert resting["status"] == "open"
    assert ex.fetch_order(resting["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert ex.cancel_order(resting["id"], "BTC/USDT")["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(resting["id"], "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 1, round(ask * 1.01, 2))

    orders = ex.fetch_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in orders] == ["ft-1", "ft-2"]
    trades = ex.fetch_my_trades("BTC/USDT")
    assert [t["order"] for t in trades] == [filled["id"]]
    assert ex.fetch_balance()["BTC"]["total"] == 0.001

    _, truth = http_json("GET", f"{base}/admin/truth")
    assert [o["clientOrderId"] for o in truth["orders"]] == ["ft-1", "ft-2"] and truth["fills"] == 1


def test_lost_ack_then_idempotent_retry(venue: tuple[ServiceProcess, str]) -> None:
    _, base = venue
    ex = exchange(base)
    ex.load_markets()
    status, _ = http_json("POST", f"{base}/admin/faults", {"kind": "lost_ack", "count": 1})
    assert status == 201
    ask = ex.fetch_order_book("ETH/USDT", 5)["asks"][0][0]
    args = ("ETH/USDT", "limit", "buy", 0.01, round(ask * 1.01, 2), {"newClientOrderId": "lost-ack-1"})
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(*args)
    recovered = ex.create_order(*args)  # the retry a careful client makes with the same client id
    assert recovered["status"] == "closed" and recovered["clientOrderId"] == "lost-ack-1"
    _, truth = http_json("GET", f"{base}/admin/truth")
    lost = [o for o in truth["orders"] if o["clientOrderId"] == "lost-ack-1"]
    assert len(lost) == 1 and len(lost[0]["fills"]) == 1, "one order, one fill, whatever the client retried"
    assert "order_ack_dropped" in log_events(venue[0]), "the venue logs the reply it dropped"


@pytest.mark.parametrize(("status", "error"), [(418, "DDoSProtection"), (429, "DDoSProtection")])
def test_ban_maps_to_ccxt_rate_limit_errors(venue: tuple[ServiceProcess, str], status: int, error: str) -> None:
    _, base = venue
    ex = exchange(base)
    code, fault = http_json("POST", f"{base}/admin/faults", {"kind": "ban", "status": status, "seconds": 30})
    assert code == 201
    try:
        with pytest.raises(getattr(ccxt, error)):
            ex.fetch_time()
    finally:
        http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
    assert ex.fetch_time() > 0


def test_server_error_and_hang_are_network_errors(venue: tuple[ServiceProcess, str]) -> None:
    _, base = venue
    ex = exchange(base)
    http_json("POST", f"{base}/admin/faults", {"kind": "error", "status": 503, "count": 1})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_time()
    code, fault = http_json("POST", f"{base}/admin/faults", {"kind": "hang", "seconds": 20})
    assert code == 201
    ex.timeout = 500
    try:
        with pytest.raises(ccxt.RequestTimeout):
            ex.fetch_time()
    finally:
        http_json("DELETE", f"{base}/admin/faults/{fault['id']}")
    ex.timeout = 3000
    assert ex.fetch_time() > 0


def log_events(proc: ServiceProcess) -> list[str]:
    """The ``event`` of every JSON line of the venue's log."""
    import json

    return [json.loads(line)["event"] for line in proc.log_text().splitlines() if line.startswith("{")]


def test_venue_log_is_json_lines(venue: tuple[ServiceProcess, str]) -> None:
    """Whatever else ran on this venue before (tests are spread over xdist workers, one venue each)."""
    proc, _ = venue
    events = log_events(proc)  # every line that starts as JSON parses as JSON
    assert events and events[0] == "venue_started"

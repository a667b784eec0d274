"""HTTP routes, metrics, health and configuration of the marketdata service, dispatched in-process."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import generate_latest

from mockstack.common.logging import EventLog
from mockstack.marketdata.__main__ import main
from mockstack.marketdata.clock import ManualTime
from mockstack.marketdata.config import ConfigError, MarketdataConfig, parse_config
from mockstack.marketdata.service import MarketdataService

START_TS = int(datetime(2026, 1, 5, 14, 30, tzinfo=UTC).timestamp())


class App:
    def __init__(self) -> None:
        self.time = ManualTime()
        self.stream = io.StringIO()
        config = MarketdataConfig(http_port=0, symbols=3, history_bars=5)
        self.service = MarketdataService(
            config, time_source=self.time.now, log=EventLog("marketdata", stream=self.stream)
        )
        self.symbols = [i.symbol for i in self.service.instruments]

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        response = self.service.http.dispatch(method, path, params or {}, raw)
        text = response.body.decode()
        return response.status, (json.loads(text) if response.content_type == "application/json" else text)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def metrics(self) -> str:
        return generate_latest(self.service.registry).decode()


@pytest.fixture
def app() -> Iterator[App]:
    application = App()
    yield application
    # Never served: ServiceHTTP.stop() would wait forever for serve_forever, so only close the socket.
    application.service.http._server.server_close()


def test_symbols_come_from_the_seeded_universe(app: App) -> None:
    status, body = app.call("GET", "/api/symbols")
    assert status == 200
    assert [s["symbol"] for s in body] == app.symbols
    assert set(body[0]) == {"symbol", "name", "start_price"}


def test_intraday_answers_eodhd_shaped_bars(app: App) -> None:
    status, body = app.call("GET", f"/api/intraday/{app.symbols[0]}", {"interval": "5m"})
    assert status == 200
    assert len(body) == 5
    assert body[0]["timestamp"] == START_TS
    assert body[0]["datetime"] == "2026-01-05 14:30:00"
    assert body[0]["gmtoffset"] == 0
    assert set(body[0]) == {"timestamp", "datetime", "gmtoffset", "open", "high", "low", "close", "volume"}
    app.time.advance(0.4)
    status, body = app.call("GET", f"/api/intraday/{app.symbols[0]}", {"from": str(START_TS + 5 * 300)})
    assert [b["datetime"] for b in body] == ["2026-01-05 14:55:00", "2026-01-05 15:00:00"]


def test_nan_is_the_json_literal(app: App) -> None:
    app.call("POST", "/admin/faults", body={"kind": "nan"})
    app.time.advance(0.2)
    response = app.service.http.dispatch("GET", f"/api/intraday/{app.symbols[0]}", {}, b"")
    assert b'"close": NaN' in response.body
    assert math.isnan(json.loads(response.body)[-1]["close"])


@pytest.mark.parametrize(
    ("path", "params", "status", "field_name", "fragment"),
    [
        ("/api/intraday/NOPE", {}, 404, "symbol", "unknown symbol 'NOPE'; known symbols:"),
        ("/api/intraday/{sym}", {"interval": "1h"}, 400, "interval", "accepted: 5m"),
        ("/api/intraday/{sym}", {"from": "yesterday"}, 400, "from", "unix timestamp"),
        ("/api/intraday/{sym}", {"to": "1.5"}, 400, "to", "unix timestamp"),
        ("/api/intraday/{sym}", {"from": "200", "to": "100"}, 400, "to", "must not be before"),
        ("/api/intraday/{sym}", {"fmt": "csv"}, 400, "fmt", "accepted: json"),
    ],
)
def test_bad_intraday_requests(
    app: App, path: str, params: dict[str, str], status: int, field_name: str, fragment: str
) -> None:
    got_status, body = app.call("GET", path.format(sym=app.symbols[0]), params)
    assert got_status == status
    assert body["field"] == field_name
    assert fragment in body["error"]


def test_clock_reports_publication_and_staleness(app: App) -> None:
    _, body = app.call("GET", "/api/clock")
    assert body == {
        "bars_published": 5,
        "last_bar_timestamp": START_TS + 4 * 300,
        "bar_interval_ms": 200,
        "stale": False,
        "stale_symbols": [],
        "simulated_timestamp": START_TS + 4 * 300,
    }
    app.call("POST", "/admin/faults", body={"kind": "stale"})
    app.time.advance(0.6)
    _, body = app.call("GET", "/api/clock")
    assert body["stale"] is True and body["bars_published"] == 5
    assert body["simulated_timestamp"] == START_TS + 7 * 300


def test_fault_lifecycle_over_http_is_logged_and_measured(app: App) -> None:
    status, fault = app.call("POST", "/admin/faults", body={"kind": "shock", "symbol": app.symbols[1]})
    assert status == 201
    assert fault["id"] == "f1" and fault["kind"] == "shock"
    assert (fault["pct"], fault["bars"], fault["symbol"]) == (-8.0, 3, app.symbols[1])
    assert 'marketdata_active_faults{kind="shock"} 1.0' in app.metrics()
    status, listed = app.call("GET", "/admin/faults")
    assert status == 200 and [f["id"] for f in listed["faults"]] == ["f1"]
    status, cleared = app.call("DELETE", "/admin/faults/f1")
    assert status == 200 and cleared["cleared"][0]["id"] == "f1"
    status, missing = app.call("DELETE", "/admin/faults/f1")
    assert status == 404 and missing["field"] == "id" and "f1" in missing["error"]
    app.call("POST", "/admin/faults", body={"kind": "gap"})
    app.call("POST", "/admin/faults", body={"kind": "nan"})
    status, cleared = app.call("DELETE", "/admin/faults")
    assert status == 200 and [f["kind"] for f in cleared["cleared"]] == ["gap", "nan"]
    assert 'marketdata_active_faults{kind="shock"} 0.0' in app.metrics()
    events = [e["event"] for e in app.events()]
    assert events.count("fault_added") == 3 and events.count("fault_cleared") == 3
    added = next(e for e in app.events() if e["event"] == "fault_added")
    assert added["fault_id"] == "f1" and "shock of -8% on" in added["msg"]
    assert 'marketdata_requests_total{endpoint="/admin/faults",status="404"} 1.0' in app.metrics()


def test_bad_fault_body_is_a_400_naming_the_field(app: App) -> None:
    status, body = app.call("POST", "/admin/faults", body={"kind": "tsunami"})
    assert status == 400 and body["field"] == "kind" and "out_of_order" in body["error"]
    response = app.service.http.dispatch("POST", "/admin/faults", {}, b"{not json")
    assert response.status == 400
    status, body = app.call("PUT", "/admin/faults")
    assert status == 405


def test_metrics_count_bars_and_requests(app: App) -> None:
    app.time.advance(1.0)
    app.call("GET", "/api/clock")
    app.call("GET", "/api/intraday/NOPE")
    text = app.metrics()
    assert "marketdata_bars_published_total 10.0" in text
    assert app.service.registry.get_sample_value("marketdata_last_bar_timestamp_seconds") == START_TS + 9 * 300
    assert 'marketdata_requests_total{endpoint="/api/clock",status="200"} 1.0' in text
    assert 'marketdata_requests_total{endpoint="/api/intraday",status="404"} 1.0' in text
    for kind in ("gap", "stale", "nan", "negative", "ohlc", "duplicate", "out_of_order", "shock"):
        assert f'marketdata_active_faults{{kind="{kind}"}} 0.0' in text


def test_health_needs_the_ticker(app: App) -> None:
    status, body = app.call("GET", "/health")
    assert status == 503
    assert body["checks"]["clock"]["ok"] is False
    assert "not running" in body["checks"]["clock"]["detail"]


# -- configuration -------------------------------------------------------------------------------


def test_defaults_match_the_contract() -> None:
    config = parse_config([], {})
    assert config == MarketdataConfig()
    assert (config.host, config.http_port, config.seed, config.symbols) == ("127.0.0.1", 7200, 42, 8)
    assert (config.bar_interval_ms, config.history_bars, config.volatility) == (200, 50, 0.001)
    assert config.start == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def test_env_vars_are_read_and_flags_win() -> None:
    env = {
        "MARKETDATA_HTTP_PORT": "7300",
        "MOCKSTACK_SEED": "7",
        "MOCKSTACK_SYMBOLS": "3",
        "MARKETDATA_BAR_INTERVAL_MS": "50",
        "MARKETDATA_START": "2026-02-02T10:00:00+01:00",
        "MARKETDATA_HISTORY_BARS": "0",
        "MARKETDATA_VOLATILITY": "0.002",
        "MARKETDATA_HOST": "localhost",
    }
    config = parse_config(["--http-port", "7301", "--symbols=4"], env)
    assert config.http_port == 7301 and config.symbols == 4
    assert (config.seed, config.bar_interval_ms, config.history_bars, config.volatility) == (7, 50, 0, 0.002)
    assert config.start == datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    assert config.host == "localhost"


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--http-port", "99999"], {}, "--http-port='99999' is not valid; expected an integer port from 0 to 65535"),
        ([], {"MARKETDATA_HTTP_PORT": "x"}, "MARKETDATA_HTTP_PORT='x' is not valid"),
        ([], {"MOCKSTACK_SYMBOLS": "0"}, "MOCKSTACK_SYMBOLS='0' is not valid; expected an integer from 1 to 100"),
        (["--bar-interval-ms", "0"], {}, "--bar-interval-ms='0'"),
        (["--start", "monday"], {}, "--start='monday' is not valid; expected an ISO-8601 time"),
        ([], {"MARKETDATA_HISTORY_BARS": "-1"}, "MARKETDATA_HISTORY_BARS='-1'"),
        (["--volatility", "nan"], {}, "--volatility='nan' is not valid; expected a number greater than 0"),
        ([], {"MOCKSTACK_SEED": "4.2"}, "MOCKSTACK_SEED='4.2' is not valid; expected an integer"),
        (["--colour", "red"], {}, "unrecognized arguments: --colour red"),
    ],
)
def test_bad_values_name_the_flag_or_variable(argv: list[str], env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(argv, env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_main_exits_2_with_one_stderr_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--history-bars", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--history-bars='lots'" in err and "expected an integer from 0" in err

"""The Freqtrade example: its config never points outside 127.0.0.1, its alert rules pass promtool,
its stack file parses, and a missing Freqtrade is a clear error."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.stack import load_stack
from tests.support.monitoring import ToolMissing, require_tool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "freqtrade"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ft_example_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen_config = load("gen_config")
exporter = load("exporter")


def urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [u for v in value.values() for u in urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in urls(v)]
    return [value] if isinstance(value, str) and "://" in value else []


def generate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "gen_config.py"),
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "config.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_generated_config_names_no_host_but_127_0_0_1(tmp_path: Path) -> None:
    result = generate(tmp_path, "--venue-url", "http://127.0.0.1:8670", "--api-port", "8680")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    found = urls(config)
    assert len(found) >= 22
    for url in found:
        parts = urlsplit(url)
        assert parts.scheme == "sqlite" or parts.hostname == "127.0.0.1", f"{url} leaves this machine"
    assert config["api_server"]["listen_ip_address"] == "127.0.0.1"
    assert config["telegram"]["enabled"] is False and config["exchange"]["enable_ws"] is False
    assert config["fiat_display_currency"] == "" and len(config["api_server"]["jwt_secret_key"]) >= 32
    assert config["exchange"]["ccxt_config"]["options"]["fetchMarkets"]["types"] == ["spot"]
    assert gen_config.foreign_hosts(config) == []


def test_every_ccxt_binance_url_is_overridden() -> None:
    ccxt = pytest.importorskip("ccxt")
    assert set(gen_config.CCXT_BINANCE_API_PATHS) == set(ccxt.binance().urls["api"]), (
        "ccxt's binance URL keys changed: update CCXT_BINANCE_API_PATHS so no request goes to Binance"
    )
    for key, url in ccxt.binance().urls["api"].items():
        assert url.endswith(gen_config.CCXT_BINANCE_API_PATHS[key]), key


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--venue-url", "http://api.binance.com:80", "--api-port", "8680"], "not this machine"),
        (["--venue-url", "http://10.0.0.5:8670", "--api-port", "8680"], "127.0.0.1"),
        (["--venue-url", "https://127.0.0.1", "--api-port", "8680"], "http://HOST:PORT"),
        (["--venue-url", "http://127.0.0.1:8670", "--api-port", "8680", "--api-host", "0.0.0.0"], "loopback"),
    ],
)
def test_a_config_pointing_elsewhere_is_refused(tmp_path: Path, args: list[str], says: str) -> None:
    result = generate(tmp_path, *args)
    assert result.returncode == 2
    assert "refused" in result.stderr and says in result.stderr
    assert not (tmp_path / "config.json").exists()


def test_foreign_hosts_finds_a_host_anywhere_in_the_config() -> None:
    config = gen_config.build_config("http://127.0.0.1:1", 2, Path("/tmp/x"))
    config["exchange"]["ccxt_config"]["urls"]["api"]["sapi"] = "https://api.binance.com/sapi/v1"
    config["telegram"]["enabled"] = True
    problems = gen_config.foreign_hosts(config)
    assert any("sapi" in p and "api.binance.com" in p for p in problems)
    assert any("telegram" in p for p in problems)


def test_bot_without_freqtrade_says_to_run_setup(tmp_path: Path) -> None:
    copy = tmp_path / "example"
    copy.mkdir()
    shutil.copy(EXAMPLE / "bot.sh", copy / "bot.sh")
    result = subprocess.run(
        ["bash", str(copy / "bot.sh"), "http://127.0.0.1:1", "2", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 127
    assert "no freqtrade" in result.stderr and "setup.sh" in result.stderr


def test_example_alert_rules_pass_promtool() -> None:
    try:
        promtool = require_tool("promtool")
    except ToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    rules = sorted((EXAMPLE / "monitoring" / "prometheus" / "rules").glob("*.yml"))
    tests = sorted((EXAMPLE / "monitoring" / "prometheus" / "tests").glob("*.yml"))
    assert rules and tests
    for argv in ([promtool, "check", "rules", *map(str, rules)], [promtool, "test", "rules", *map(str, tests)]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=EXAMPLE)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}\n{result.stderr}"


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    import yaml

    groups = yaml.safe_load((EXAMPLE / "monitoring/prometheus/rules/freqtrade-alerts.yml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    runbook = (EXAMPLE / "RUNBOOK.md").read_text().lower()
    assert {r["labels"]["severity"] for r in rules} == {"P0", "P1", "P2", "P3"}
    for rule in rules:
        assert rule["alert"].lower() in runbook, f"{rule['alert']} is not in RUNBOOK.md"
        assert rule["labels"]["runbook"]


def test_stack_file_parses_with_the_process_backend_commands() -> None:
    stack = load_stack(EXAMPLE / "docker-compose.yml")
    assert {"venue", "freqtrade", "exporter", "toxiproxy", "prometheus", "alertmanager"} <= set(stack.services)
    assert stack.link("venue").source == "freqtrade" and stack.link("venue").target == "venue"
    bot = stack.service("freqtrade").local
    assert bot is not None and "{{link.venue}}" in " ".join(bot.command)
    for spec in stack.services.values():
        assert spec.local is not None and "0.0.0.0" not in " ".join(spec.local.command), spec.name


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("binance GET http://127.0.0.1:1/api/v3/klines ExchangeNotAvailable Connection refused", "network"),
        ("Giving up retrying: fetch_ohlcv() RequestTimeout", "network"),
        ("_async_get_candle_history() returned exception: DDosProtection backoff delay 1", "rate_limit"),
        ("Strategy caused the following exception", None),
    ],
)
def test_exporter_classifies_exchange_errors(message: str, kind: str | None) -> None:
    found = next((k for k, pattern in exporter.KINDS.items() if pattern.search(message)), None)
    assert found == kind


class _FakeAPIs:
    """Freqtrade's REST API and the venue's truth as canned JSON on a loopback port (logic test only)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.routes = routes

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path not in outer.routes:
                    self.send_error(404)
                    return
                body = json.dumps(outer.routes[path]).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _metrics(lines: list[str]) -> dict[str, float]:
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in lines if not ln.startswith("#")}


def test_exporter_turns_the_api_into_metrics_and_sees_divergence() -> None:
    import time as _time

    now = _time.time()
    trade = {"trade_id": 1, "base_currency": "BTC", "amount": 0.0003, "orders": [{"order_id": "1"}]}
    apis = _FakeAPIs(
        {
            "/api/v1/ping": {"status": "pong"},
            "/api/v1/show_config": {"state": "paused", "stake_currency": "USDT"},
            "/api/v1/health": {"last_process_ts": now - 42},
            "/api/v1/count": {"current": 1, "max": 1},
            "/api/v1/balance": {"currencies": [{"currency": "USDT", "balance": 980.5}]},
            "/api/v1/status": [trade],
            "/api/v1/trades": {"trades": [{"trade_id": 0, "orders": [{"order_id": "0"}]}]},  # closed trades only
            "/api/v1/logs": {
                "logs": [
                    [
                        "d",
                        now * 1000,
                        "freqtrade.exchange.common",
                        "WARNING",
                        "_async_get_candle_history() returned exception: DDosProtection",
                    ],
                    ["d", now * 1000 + 1, "freqtrade.worker", "INFO", "Bot heartbeat"],
                ]
            },
            "/admin/truth": {
                "balances": {"USDT": {"free": "980", "locked": "0"}, "BTC": {"free": "0", "locked": "0"}},
                "orders": [
                    {"orderId": 0, "executedQty": "0.00030000"},
                    {"orderId": 1, "executedQty": "0.00030000"},
                    {"orderId": 2, "executedQty": "0.00030000"},
                ],
            },
            "/api/v3/ping": {},
        }
    )
    try:
        ex = exporter.Exporter(apis.url, apis.url, apis.url, "drill", "drill", 2.0)
        first = _metrics(ex.collect())
        second = _metrics(ex.collect())
    finally:
        apis.close()
    assert first["freqtrade_up"] == 1
    assert first['freqtrade_state{state="paused"}'] == 1 and first['freqtrade_state{state="running"}'] == 0
    assert 41 <= first["freqtrade_last_process_age_seconds"] < 60
    assert first["freqtrade_open_trades"] == 1 and first['freqtrade_balance_total{currency="USDT"}'] == 980.5
    assert first['freqtrade_venue_position_diff{asset="BTC"}'] == pytest.approx(-0.0003)
    assert first["freqtrade_venue_unknown_orders"] == 1, "order 2 filled at the venue, unknown to the bot"
    assert first['freqtrade_exchange_errors_total{kind="rate_limit"}'] == 1
    assert second['freqtrade_exchange_errors_total{kind="rate_limit"}'] == 1, "a log record is counted once"
    assert first["freqtrade_venue_reachable"] == 1


def test_exporter_reports_a_dead_bot_and_an_unreachable_venue() -> None:
    ex = exporter.Exporter("http://127.0.0.1:9", "http://127.0.0.1:9", None, "drill", "drill", 0.5)
    metrics = _metrics(ex.collect())
    assert metrics["freqtrade_up"] == 0 and metrics["freqtrade_venue_reachable"] == 0
    assert metrics['freqtrade_api_errors_total{endpoint="ping"}'] == 1
    assert "freqtrade_open_trades" not in metrics

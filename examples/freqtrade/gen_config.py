#!/usr/bin/env python3
"""Write the Freqtrade config of the drill bot: every ccxt URL points at the local venue, nothing else.

    python gen_config.py --venue-url http://127.0.0.1:8670 --api-port 8680 --run-dir run/ --out run/config.json

Live mode with fake keys (the venue checks no signature), so Freqtrade places real orders that the
venue matches. Every URL in the result must be on a loopback address: a venue URL or an API
address elsewhere is refused with exit status 2, and the written config is checked once more
(:func:`foreign_hosts`) before it is saved. Standard library only: it runs under any Python 3.11+.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LOOPBACK_NAMES = ("localhost",)

# Every key of ccxt.binance().urls['api'] (ccxt 4.5.90) and the path it has on Binance.
CCXT_BINANCE_API_PATHS: dict[str, str] = {
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}


class ConfigRefused(ValueError):
    """The config would let Freqtrade reach a non-loopback address."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def foreign_hosts(config: dict[str, Any]) -> list[str]:
    """Every place in ``config`` that names a non-loopback host: URLs anywhere, and the API listen address."""
    found = []
    for path, text in _strings(config):
        if "://" in text:
            parts = urlsplit(text)
            host = parts.hostname or ""
            local_file = parts.scheme in ("sqlite", "file") and not host
            if not local_file and not is_loopback(host):
                found.append(f"{path} = {text!r}")
    listen = config.get("api_server", {}).get("listen_ip_address")
    if listen is not None and not is_loopback(listen):
        found.append(f"api_server.listen_ip_address = {listen!r}")
    if config.get("telegram", {}).get("enabled"):
        found.append("telegram.enabled = true (Telegram is a public network service)")
    if config.get("exchange", {}).get("enable_ws", True):
        found.append("exchange.enable_ws is not false (websockets would go to Binance's own hosts)")
    return found


def venue_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ConfigRefused(f"--venue-url {url!r} must be http://HOST:PORT (e.g. http://127.0.0.1:8670)")
    if not is_loopback(parts.hostname):
        raise ConfigRefused(
            f"--venue-url {url!r} points at {parts.hostname}, not this machine: the drill bot may only reach a "
            "venue on 127.0.0.1 (start the venue locally, or its Toxiproxy link, and pass that address)"
        )
    return f"http://{parts.hostname}:{parts.port}"


def build_config(
    venue_url: str,
    api_port: int,
    run_dir: Path,
    pairs: Sequence[str] = ("BTC/USDT", "ETH/USDT"),
    api_host: str = "127.0.0.1",
    timeframe: str = "1m",
) -> dict[str, Any]:
    base = venue_base(venue_url)
    if not is_loopback(api_host):
        raise ConfigRefused(
            f"--api-host {api_host!r} is not a loopback address; Freqtrade's API listens on 127.0.0.1 only"
        )
    if not 1 <= api_port <= 65535:
        raise ConfigRefused(f"--api-port {api_port} must be a port from 1 to 65535")
    run_dir = run_dir.resolve()
    config: dict[str, Any] = {
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": 20,
        "tradable_balance_ratio": 0.99,
        "fiat_display_currency": "",
        "dry_run": False,
        "cancel_open_orders_on_exit": False,
        "trading_mode": "spot",
        "timeframe": timeframe,
        "db_url": f"sqlite:///{run_dir / 'tradesv3.sqlite'}",
        "user_data_dir": str(run_dir / "user_data"),
        "strategy": "DrillStrategy",
        "strategy_path": str(HERE / "strategies"),
        "unfilledtimeout": {"entry": 2, "exit": 2, "exit_timeout_count": 0, "unit": "minutes"},
        "entry_pricing": {
            "price_side": "other",
            "use_order_book": True,
            "order_book_top": 1,
            "price_last_balance": 0.0,
            "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1},
        },
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exchange": {
            "name": "binance",
            "key": "drill-fake-key",
            "secret": "drill-fake-secret",
            "enable_ws": False,
            "ccxt_config": {
                "urls": {"api": {key: base + path for key, path in CCXT_BINANCE_API_PATHS.items()}},
                "options": {"fetchMarkets": {"types": ["spot"]}},
            },
            "ccxt_async_config": {},
            "pair_whitelist": list(pairs),
            "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "api_server": {
            "enabled": True,
            "listen_ip_address": api_host,
            "listen_port": api_port,
            "verbosity": "error",
            "enable_openapi": False,
            "jwt_secret_key": "drill-secret-0123456789-abcdefghijklmnop",
            "ws_token": "drill-ws-token-0123456789abcdef0123",
            "CORS_origins": [],
            "username": "drill",
            "password": "drill",
        },
        "bot_name": "ft-drill",
        "initial_state": "running",
        "force_entry_enable": True,
        "internals": {"process_throttle_secs": 2, "heartbeat_interval": 30},
    }
    problems = foreign_hosts(config)
    if problems:  # a programming error above, never a user's input: still refused
        raise ConfigRefused("the generated config names hosts other than 127.0.0.1: " + "; ".join(problems))
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue-url", required=True, help="the venue as the bot reaches it (its Toxiproxy link)")
    parser.add_argument("--api-port", type=int, required=True, help="port of Freqtrade's REST API on 127.0.0.1")
    parser.add_argument("--api-host", default="127.0.0.1", help="address of Freqtrade's REST API (loopback only)")
    parser.add_argument("--run-dir", type=Path, required=True, help="where the trade DB and user_data go")
    parser.add_argument("--out", type=Path, required=True, help="the config file to write")
    parser.add_argument("--pairs", default="BTC/USDT,ETH/USDT", help="comma-separated pair whitelist")
    parser.add_argument("--timeframe", default="1m", help="candle timeframe (default 1m)")
    args = parser.parse_args(argv)
    try:
        config = build_config(
            args.venue_url,
            args.api_port,
            args.run_dir,
            tuple(p for p in args.pairs.split(",") if p),
            args.api_host,
            args.timeframe,
        )
    except ConfigRefused as exc:
        print(f"gen_config: refused: {exc}", file=sys.stderr)
        return 2
    (args.run_dir / "user_data").mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(f"gen_config: wrote {args.out} (venue {venue_base(args.venue_url)}, API 127.0.0.1:{args.api_port})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
